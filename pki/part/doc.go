// Package part is what every part of the PKI (the CA, the Manager,
// enrollment, certificate sources) takes from the process: Deps (a
// logger, a Prometheus registerer, a clock), a zap logger for certmagic
// over the same handler so there is one log stream, and the ticker loop
// each part runs its maintenance in.
package part
