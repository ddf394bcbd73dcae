package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"
)

// guessFailures is how many unknown tokens lock a source out (enroll's
// lockout threshold).
const guessFailures = 5

// Guessing tokens locks the source out: after guessFailures unknown
// tokens even the right one gets 429 with Retry-After, before any token
// file is read.
func TestEnrollTokenGuessingIsLockedOut(t *testing.T) {
	f := newEnrollFixture(t)
	for i := range guessFailures {
		status, err := postEnroll(t, f, "guess-"+strings.Repeat("x", 40)+string(rune('a'+i)), "sidecar-api")
		if err != nil || status != http.StatusForbidden {
			t.Fatalf("guess %d: %d, %v; want 403", i, status, err)
		}
	}
	status, err := postEnroll(t, f, tokenAPI, "sidecar-api")
	if err != nil || status != http.StatusTooManyRequests {
		t.Fatalf("right token after %d guesses: %d, %v; want 429", guessFailures, status, err)
	}
	if !strings.Contains(f.logs.String(), "locked out") {
		t.Errorf("the lockout was not logged:\n%s", f.logs.String())
	}
}

// A request body over the bound is refused without being read whole.
func TestEnrollRequestSizeIsBounded(t *testing.T) {
	f := newEnrollFixture(t)
	body := bytes.Repeat([]byte(" "), 8<<20)
	req, _ := http.NewRequest(http.MethodPost, f.url, bytes.NewReader(append([]byte(`{"csr":"`), body...)))
	req.Header.Set("Authorization", "Bearer "+tokenAPI)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.ca.ca.TrustBundle().PEM())
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}}}
	defer c.CloseIdleConnections()
	res, err := c.Do(req)
	if err != nil {
		return // the server may close before reading all 8 MiB: also a refusal
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("an 8 MiB request got %d, want 400", res.StatusCode)
	}
}
