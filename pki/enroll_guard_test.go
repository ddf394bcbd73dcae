package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
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

// The enrollment endpoint's per-source bucket (enroll's rateBurst and
// ratePerSecond).
const (
	enrollBurst     = 20
	enrollPerSecond = 2
)

// Hammering the endpoint over real TLS, from one source, with the right
// token: past the bucket every request gets 429 with a Retry-After before
// the CA signs anything, the counters say so, and the source is served
// again once it waits as told.
func TestEnrollHammeringIsRateLimited(t *testing.T) {
	f := newEnrollFixture(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.ca.ca.TrustBundle().PEM())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	csr := enrollBody(t, "sidecar-api")
	post := func() (int, string, error) {
		req, _ := http.NewRequest(http.MethodPost, f.url, bytes.NewReader(csr))
		req.Header.Set("Authorization", "Bearer "+tokenAPI)
		res, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Retry-After"), nil
	}

	const workers, perWorker = 8, 10
	var mu sync.Mutex
	statuses := map[int]int{}
	var retryAfter []string
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for range perWorker {
				status, wait, err := post()
				mu.Lock()
				if err != nil {
					t.Errorf("request: %v", err)
				}
				statuses[status]++
				if status == http.StatusTooManyRequests {
					retryAfter = append(retryAfter, wait)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	issued, limited := statuses[http.StatusOK], statuses[http.StatusTooManyRequests]
	t.Logf("%d requests in %s: %d issued, %d rate limited", workers*perWorker, elapsed.Round(time.Millisecond), issued, limited)
	if issued+limited != workers*perWorker {
		t.Errorf("statuses %v: want only 200 and 429", statuses)
	}
	if most := enrollBurst + int(elapsed.Seconds()*enrollPerSecond) + 1; issued > most || issued < 1 {
		t.Errorf("%d certificates issued in %s, want 1 to %d (the bucket)", issued, elapsed, most)
	}
	if limited == 0 {
		t.Fatal("no request was rate limited")
	}
	for _, v := range retryAfter {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 60 {
			t.Errorf("Retry-After %q on a 429, want whole seconds from 1 to 60", v)
			break
		}
	}
	if n := counterValue(t, f.ca.reg, "drawbridge_pki_enrollments_total", "token", "issued"); int(n) != issued {
		t.Errorf("issued counter %v, want %d", n, issued)
	}
	if n := counterValue(t, f.ca.reg, "drawbridge_pki_enrollments_total", "token", "rate_limited"); int(n) != limited {
		t.Errorf("rate_limited counter %v, want %d", n, limited)
	}
	if !strings.Contains(f.logs.String(), "over its request rate") {
		t.Error("the rate limit was not logged")
	}

	// Waiting as told is enough: the bucket refills at its rate.
	time.Sleep(time.Second + time.Second/enrollPerSecond)
	if status, _, err := post(); err != nil || status != http.StatusOK {
		t.Errorf("after waiting out Retry-After: %d, %v; want 200", status, err)
	}
}
