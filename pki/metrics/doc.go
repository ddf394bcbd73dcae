// Package metrics holds the PKI's Prometheus collectors. Every part (CA,
// Manager, enrollment, certificate files) calls New with the same
// registerer and shares one set of collectors; a nil *Metrics records
// nothing.
package metrics
