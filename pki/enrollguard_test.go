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

func TestGuessGuardLocksOutAndForgets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	g := newGuessGuard(func() time.Time { return now })
	for i := 1; i < guessFailures; i++ {
		if g.failed("192.0.2.1") {
			t.Fatalf("locked out after %d failures, want %d", i, guessFailures)
		}
	}
	if !g.failed("192.0.2.1") {
		t.Fatalf("not locked out after %d failures", guessFailures)
	}
	if _, locked := g.lockedOut("192.0.2.1"); !locked {
		t.Fatal("lockedOut = false right after the lockout")
	}
	if _, locked := g.lockedOut("192.0.2.2"); locked {
		t.Error("another source is locked out too")
	}
	now = now.Add(guessLockout)
	if _, locked := g.lockedOut("192.0.2.1"); locked {
		t.Error("still locked out after the lockout period")
	}
	// Failures spread wider than the window never lock out.
	for range 3 * guessFailures {
		now = now.Add(guessWindow/time.Duration(guessFailures-1) + time.Second)
		if g.failed("192.0.2.3") {
			t.Fatal("slow failures locked the source out")
		}
	}
}

func TestSourceOfGroupsIPv6By64(t *testing.T) {
	if a, b := sourceOf("[2001:db8:1:2::1]:443"), sourceOf("[2001:db8:1:2:ffff::9]:1"); a != b {
		t.Errorf("sources %q and %q of one /64 differ", a, b)
	}
	if got := sourceOf("192.0.2.7:5000"); got != "192.0.2.7" {
		t.Errorf("sourceOf IPv4 = %q", got)
	}
}

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
