package ca

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is what the CA takes of the PKI's configuration (pki.Config.CA
// builds it, after pki.Config's Defaults and Validate); every field must
// be set.
type Config struct {
	// TrustDomain is the SPIFFE trust domain of every identity issued.
	TrustDomain string
	// RootLifetime is the validity of a new root.
	RootLifetime time.Duration
	// IntermediateLifetime is the validity of an intermediate.
	IntermediateLifetime time.Duration
	// LeafLifetime is the validity of a leaf; a leaf never outlives its
	// intermediate.
	LeafLifetime time.Duration
	// RenewalRatio is the share of the intermediate's life left when it is
	// renewed.
	RenewalRatio float64
	// RootRotateBefore starts a root rotation this long before the root
	// expires.
	RootRotateBefore time.Duration
	// PermittedDNSDomains are the intermediate's DNS name constraints.
	PermittedDNSDomains []string
	// CheckInterval is how often Run calls Maintain.
	CheckInterval time.Duration
}

// CheckDNSName accepts a lower-case host name without a trailing dot.
func CheckDNSName(d string) error {
	if d == "" {
		return errors.New("empty name")
	}
	if len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return fmt.Errorf("%q is not a DNS name", d)
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("%q is not a lower-case DNS name", d)
		}
	}
	return nil
}
