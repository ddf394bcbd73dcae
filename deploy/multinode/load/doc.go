// Command load is the steady, bounded client of deploy/multinode.sh: a load
// balancer in front of the edge nodes (host-mode ports) that sends requests
// at a fixed rate, with retries off, and counts every response.
//
// It health-checks each node's edge (/readyz on the published admin port)
// and sends only to nodes that passed their last check, as a cloud load
// balancer or a DNS health check would; a request that fails is counted,
// never retried (keep-alives are off, so the transport cannot replay one
// either). It stops after -max or on SIGINT/SIGTERM and prints one JSON
// summary line on stdout.
package main
