// Package pki composes drawbridge's PKI from its configuration: Config is
// the pki section (state dir, passphrase, trust domain, lifetimes,
// enrollment), and Open opens the sealed store (pki/store) and builds
// either the CA (pki/ca) with its enrollment endpoint (pki/enroll) or, on
// an enrolling instance, an enrollment client, and the Manager
// (pki/cert) that hands out every *tls.Config. Run runs their
// maintenance. The parts live in their own packages:
//
//   - pki/layout: the storage keys and locks of a state dir;
//   - pki/store: sealed storage and passphrase rotation;
//   - pki/trust: the trust bundle, PEM and certificate fingerprints;
//   - pki/ca: the CA, root rotation, its certmagic Issuer;
//   - pki/cert: the certmagic Manager and TLS configs;
//   - pki/handshake: the concurrent-handshake TLS listener;
//   - pki/enroll: enrollment, server and client;
//   - pki/source: certificates from files and ACME;
//   - pki/part, pki/metrics: what every part takes and records.
package pki
