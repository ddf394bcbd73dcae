package enroll

import "time"

// ServerConfig configures the CA's enrollment endpoint (the pki
// section's enrollment key).
type ServerConfig struct {
	// Tokens that may enroll. Zero: none.
	Tokens []Token `yaml:"tokens"`
}

// Token is one bootstrap token, bound to one identity.
type Token struct {
	// Identity is the only SPIFFE ID this token can get a certificate for,
	// e.g. spiffe://drawbridge.internal/sidecar-api. Zero: invalid.
	Identity string `yaml:"identity"`
	// TokenFile holds the token (a Docker secret); at least 32 bytes.
	// Zero: invalid.
	TokenFile string `yaml:"token_file"`
	// Expires is when the token stops working. Zero: never.
	Expires time.Time `yaml:"expires"`
	// DNSNames are the DNS names the enrolled certificate may carry.
	// Zero: none.
	DNSNames []string `yaml:"dns_names"`
}
