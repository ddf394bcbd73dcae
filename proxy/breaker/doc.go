// Package breaker puts a two-step circuit breaker in front of every
// upstream target. An attempt asks its target's breaker first (Allow) and
// reports how it went (Done.Report); a breaker that has seen too many
// failures opens and the target is gated, so no attempt dials it until the
// open timeout has passed. Then a few attempts are let through
// (half-open) and their outcome closes the breaker again or reopens it.
//
// The breaker is our own, shaped like github.com/sony/gobreaker/v2's
// two-step one (generations, a rolling window of buckets), without its
// report closure: an attempt costs no allocation.
//
// What counts as a failure is a Policy: connection failures, timeouts,
// resets and 5xx responses by default, never 4xx and never a client that
// went away.
package breaker
