// Package cert is certificate management over certmagic: a Manager owns a
// certmagic Config and Cache over an Authority (the local CA's issuer or an
// enrollment client) and hands out server configs (modes server and
// mutual) and client configs for upstream hops. The trust bundle is read
// on every handshake, so renewal and rotation apply to new handshakes at
// once and open connections stay open. Refused handshakes are counted by
// a bounded reason and logged without floods.
package cert
