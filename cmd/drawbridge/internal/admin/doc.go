// Package admin runs the operator-facing listener: /livez, /readyz and the
// handlers other parts register (metrics, status). It binds to loopback by
// default and drains after the data plane, so /readyz can report the drain.
package admin
