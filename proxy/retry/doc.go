// Package retry is the loop an upstream's requests and relayed connections
// go through: pick a target the breakers admit, have the caller attempt it,
// report the outcome, and try again while that is safe and the retry budget
// lasts, with jittered backoff in between.
//
// It exists so that the retry decisions (which target next, whether a
// failed attempt may be repeated, how long to wait, whether the budget
// allows it) are made in one place for HTTP and for relayed streams. What
// an attempt is (transport, per-try timeout, spans, metrics) and how an
// error is classified stay with the caller, behind Attempter: the proxy's
// one classifier decides, and this package only asks it.
package retry
