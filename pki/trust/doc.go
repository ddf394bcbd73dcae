// Package trust holds the trust bundle (the roots a peer's chain must end
// in, swapped whole on a rotation) and the PEM and fingerprint helpers for
// certificates that the CA, the Manager and enrollment share.
package trust
