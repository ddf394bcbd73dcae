// Package drawtest holds the helpers drawbridge's tests share (tests only):
// a goroutine-safe buffer for logs, polling with a deadline, a settable
// clock, and servers on 127.0.0.1:0 (accept loops, a TCP echo, the greeting
// of a TLS test server) that stop with the test. It imports nothing of
// drawbridge, so any package's tests can use it.
package drawtest
