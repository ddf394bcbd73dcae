package pki

import (
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/enroll"
)

func TestConfigDefaultsValid(t *testing.T) {
	cfg := Config{PassphraseFile: "/run/secrets/ca"}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: got %v, want valid", err)
	}
	if cfg.LeafLifetime != 24*time.Hour || cfg.IntermediateLifetime != 30*24*time.Hour || cfg.TrustDomain != "drawbridge.internal" {
		t.Errorf("defaults: got %+v", cfg)
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	cfg := Config{
		StateDir:             "relative/dir",
		TrustDomain:          "Bad_Domain",
		IntermediateLifetime: 30 * time.Minute,
		LeafLifetime:         30 * time.Second,
		RenewalRatio:         1.5,
		PermittedDNSDomains:  []string{"ok.internal", "Not OK"},
		EnrollServer: enroll.ServerConfig{Tokens: []enroll.Token{
			{Identity: "spiffe://other/x", TokenFile: "/t"},
			{Identity: "not an id"},
		}},
	}
	cfg.Defaults()
	err := cfg.Validate()
	if err == nil {
		t.Fatal("got no error")
	}
	for _, key := range []string{
		"state_dir: ", "passphrase_file: ", "trust_domain: ", "leaf_lifetime: ", "intermediate_lifetime: ",
		"renewal_ratio: ", "permitted_dns_domains[1]: ", "enrollment.tokens[0].identity: ",
		"enrollment.tokens[1].identity: ", "enrollment.tokens[1].token_file: ",
	} {
		if !strings.Contains(err.Error(), "\n"+key) && !strings.HasPrefix(err.Error(), key) {
			t.Errorf("error does not start a line with %q:\n%v", key, err)
		}
	}
	if strings.Contains(err.Error(), "permitted_dns_domains[0]") {
		t.Errorf("valid permitted_dns_domains[0] reported:\n%v", err)
	}
}

func TestConfigEnroll(t *testing.T) {
	cfg := Config{PassphraseFile: "/run/secrets/p", EnrollClient: &enroll.ClientConfig{URL: "http://ca:8443/x"}}
	cfg.Defaults()
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "enroll.url: ") || !strings.Contains(err.Error(), "enroll.ca_file: ") {
		t.Fatalf("got %v, want enroll.url and enroll.ca_file problems", err)
	}
	cfg.EnrollClient = &enroll.ClientConfig{URL: "https://ca:8443/v1/pki/enroll", CAFile: "/run/secrets/ca.pem"}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid enroll config: %v", err)
	}
}
