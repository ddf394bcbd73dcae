// Package proxy is drawbridge's data plane: listeners, routes and upstreams
// from configuration, the HTTP handler built on httputil.ReverseProxy, request
// hygiene, retries, the mapping of failures to statuses, and the lifecycle of
// the servers (bind, serve, drain).
//
// A request flows: listener -> hygiene (sanitise, normalise, request ID) ->
// router (host, longest path prefix) -> route policy (limits, header edits)
// -> ReverseProxy -> upstream transport (pick a target, attempt, retry) ->
// response. Every failure becomes a status in exactly one place (errors.go).
package proxy
