package identity_test

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
)

func TestFromCertificate(t *testing.T) {
	ca := pkitest.NewCA(t, "drawbridge.internal")
	good := ca.Leaf(t, "api", "api").Leaf
	noURI := ca.Issue(t, pkitest.LeafOptions{DNSNames: []string{"api"}}).Leaf

	id, err := identity.FromCertificate(good)
	if err != nil {
		t.Fatal(err)
	}
	if want := "spiffe://drawbridge.internal/api"; id.String() != want {
		t.Errorf("got %q, want %q", id, want)
	}

	twoURIs := *good
	twoURIs.URIs = append(twoURIs.URIs, &url.URL{Scheme: "spiffe", Host: "drawbridge.internal", Path: "/web"})
	badURI := *good
	badURI.URIs = []*url.URL{{Scheme: "https", Host: "x"}}
	for name, c := range map[string]*tls.Certificate{
		"no URI SAN": {Leaf: noURI}, "two URI SANs": {Leaf: &twoURIs}, "not SPIFFE": {Leaf: &badURI}, "nil": {},
	} {
		if id, err := identity.FromCertificate(c.Leaf); !errors.Is(err, identity.ErrNoIdentity) {
			t.Errorf("%s: got %v, %v; want ErrNoIdentity", name, id, err)
		}
	}
}

// TestFromConnectionState checks over a real handshake that an identity
// comes only from a verified chain.
func TestFromConnectionState(t *testing.T) {
	ca := pkitest.NewCA(t, "td")
	for _, tc := range []struct {
		name     string
		auth     tls.ClientAuthType
		wantID   string
		wantFail bool
	}{
		{"verified", tls.RequireAndVerifyClientCert, "spiffe://td/web", false},
		{"not verified", tls.RequireAnyClientCert, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, "api", "api")}, ClientAuth: tc.auth, ClientCAs: ca.Pool()}
			cli := &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, "web")}, RootCAs: ca.Pool(), ServerName: "api"}
			c1, c2 := net.Pipe()
			defer c1.Close()
			defer c2.Close()
			s := tls.Server(c1, srv)
			errc := make(chan error, 1)
			go func() { errc <- s.Handshake() }()
			if err := tls.Client(c2, cli).Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			id, err := identity.FromConnectionState(s.ConnectionState())
			if tc.wantFail {
				if err == nil {
					t.Fatalf("got %v, want refusal", id)
				}
				return
			}
			if err != nil || id.String() != tc.wantID {
				t.Fatalf("got %v, %v; want %s", id, err, tc.wantID)
			}
		})
	}
	if _, err := identity.FromConnectionState(tls.ConnectionState{}); err == nil {
		t.Error("incomplete handshake: got an identity, want refusal")
	}
}
