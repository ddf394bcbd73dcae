// Package ca is drawbridge's certificate authority: a root (10 years by
// default) and a name-constrained intermediate (30 days, renewed with a
// third of its life left), ECDSA P-256, 128-bit random serials, all kept
// in a certmagic.Storage (the sealed store in production), and Issuer, a
// certmagic.Issuer backed by the CA so certmagic's cache, storage, locking
// and renewal manage every leaf.
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
package ca
