// Package balancer holds the pools of upstream targets and the policies that
// pick one target per attempt: round robin, least request (power of two
// choices) and peak EWMA latency.
//
// Everything a picker reads on the hot path is atomic; health checkers,
// outlier detection and circuit breakers change a target's state through the
// small setters on Target and never take a lock the proxy waits on.
package balancer
