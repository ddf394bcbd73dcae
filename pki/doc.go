// Package pki is drawbridge's internal certificate authority and the source
// of every *tls.Config the gateway uses.
//
// The pieces, each in its own file:
//
//   - SealedStorage (storage.go, seal.go): a certmagic.Storage over a
//     FileStorage that seals every private key with a key derived from a
//     passphrase (argon2id, XChaCha20-Poly1305), so neither the CA keys nor
//     the leaf keys certmagic stores are ever written in clear.
//   - CA (ca.go, ca_state.go, rotate.go, maintain.go): a root (10 years by
//     default) and a name-constrained intermediate (30 days, renewed with a
//     third of its life left), ECDSA P-256, 128-bit random serials. The root
//     rotates without an outage: a new root is made and cross-signed by the
//     old one, the trust bundle holds both until the last leaf issued under
//     the old root has expired, then the old root leaves the bundle.
//   - Issuer (issuer.go): a certmagic.Issuer backed by the CA, so certmagic's
//     cache, storage, locking and renewal manage every leaf.
//   - Manager (manager.go, tlsconfig.go): owns a certmagic Config and Cache
//     and hands out server configs (modes server and mutual) and client
//     configs for upstream hops. The trust bundle is read on every handshake,
//     so renewal and rotation apply to new handshakes at once and open
//     connections stay open.
//   - Enrollment (enroll.go, enrollclient.go): an HTTP handler that issues a
//     certificate to the holder of a bootstrap token or renews it for the
//     holder of a current certificate, and an Issuer that calls it, for
//     drawbridge instances without the CA key (sidecars).
//   - FileSource (filesource.go) and ACME (acme.go): certificates for the
//     public edge from files on disk (hot-reloaded) or from an ACME CA.
//
// # Root rotation
//
// Rotate (and Run, a configured time before the root expires) performs:
//
//  1. make a new root R2 and a new intermediate under it;
//  2. cross-sign R2 with the old root R1 and send that cross certificate in
//     every new leaf's chain, so peers that trust only R1 still verify;
//  3. publish the bundle {R1, R2}: old leaves (leaf, I1, R1) and new ones
//     (leaf, I2, R2) both verify on every hop;
//  4. once the last leaf issued under R1 has expired, drop R1 and the cross
//     certificate: the bundle is {R2}.
//
// Each step is a single write of the CA state, so a crash leaves either the
// old or the new state, never a mix. Enrolled instances (sidecars) learn the
// new bundle with their next renewal, which comes before step 4: until then
// the cross certificate lets them verify new leaves with the old root alone.
// A service given files by hand (a CA file on a shared volume) must receive
// the new bundle before step 4; Status shows when that is.
package pki
