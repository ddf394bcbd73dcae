// Package proxy is drawbridge's data plane: listeners, routes and upstreams
// from configuration, the HTTP handler and its forwarder (forward.go), request
// hygiene, the upstreams' attempts (retried by proxy/retry), the mapping of
// failures to statuses, and the lifecycle of the servers (bind, serve, drain).
//
// A request flows: listener -> hygiene (sanitise, normalise, request ID) ->
// router (host, longest path prefix) -> route policy (limits, header edits)
// -> forwarder (the upstream request; 1xx, head, body, trailers or an
// upgraded relay back) -> upstream transport (pick a target that is healthy, not
// ejected and whose breaker admits it; attempt; report the outcome to the
// breaker and outlier detection; retry within the retry budget: the loop
// is proxy/retry, the attempt attempt.go, the classifier it asks
// errors.go) -> the route's fallback when no target is available ->
// response. Every failure becomes a status in exactly one place
// (errors.go). The upstreams' health checks, outlier detection and service
// discovery run in the background from Run until the drain is over
// (resilience.go).
//
// The tcp and postgres listeners relay bytes in proxy/relay; proxy binds
// their sockets, compiles their routes and gives them its upstreams, whose
// DialStream picks and dials targets through the same retry loop (tcp_upstream.go).
//
// The http listeners' socket mechanics (the connection limit, the
// handlers in flight and the connections without a request that a drain
// waits for or closes) are in proxy/listen; proxy binds, builds the
// servers and runs the drain with them (server.go).
package proxy
