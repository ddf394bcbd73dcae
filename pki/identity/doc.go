// Package identity reads the SPIFFE identity of a peer from a verified
// certificate and decides whether an identity is allowed by a policy.
//
// An identity is a SPIFFE ID, spiffe://<trust-domain>/<path>, carried as the
// single URI SAN of an X.509 certificate (SPIFFE X.509-SVID, section 2). Every
// function here fails closed: a certificate with no URI SAN, more than one, a
// malformed ID, an unverified connection or an empty allow-list yields an
// error or a refusal, never a default identity.
//
// The package imports nothing of drawbridge's, so the proxy can check
// identities without depending on the certificate authority.
package identity
