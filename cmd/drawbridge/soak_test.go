package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// soakDuration is how long TestSoak runs: 60s by default (CI);
// DRAWBRIDGE_SOAK=10m for the full soak of the hardening issue:
//
//	DRAWBRIDGE_SOAK=10m go test -race -run TestSoak -timeout 20m -v ./cmd/drawbridge/
func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("DRAWBRIDGE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("DRAWBRIDGE_SOAK: %v", err)
		}
		return d
	}
	return time.Minute
}

// rssKiB is this process's resident set size (VmRSS) in KiB.
func rssKiB(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			n, _ := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))), 10, 64)
			return n
		}
	}
	return 0
}

type soakSample struct {
	at         time.Duration
	goroutines int
	rss        int64
	ok, failed int64
}

// TestSoak runs mutual-TLS traffic (client -> mutual listener -> https
// upstream requiring drawbridge's certificate, plus a relayed TCP
// connection kept open throughout) while one-minute leaves renew and the
// CA passphrase rotates once halfway: no request may fail, the kept
// connection must still relay at the end, and the goroutine count and RSS
// must stay flat. The curves are logged every 10s; run with -v to see them.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak of one minute or more")
	}
	d := soakDuration(t)
	tg := startTLSGateway(t, "1m")
	relay := openRelay(t, tg)
	tr := startTraffic(tg)
	time.Sleep(5 * time.Second) // warm up: connections, pools, first handshakes
	sample := func(start time.Time) soakSample {
		runtime.GC()
		return soakSample{at: time.Since(start).Round(time.Second), goroutines: runtime.NumGoroutine(), rss: rssKiB(t),
			ok: tr.ok.Load(), failed: tr.failed.Load()}
	}
	start := time.Now()
	first := sample(start)
	samples := []soakSample{first}
	leaf := leafOf(tg, "gw").NotBefore
	renewals, rotated := 0, false
	for time.Since(start) < d {
		time.Sleep(min(10*time.Second, d-time.Since(start)))
		if nb := leafOf(tg, "gw").NotBefore; nb.After(leaf) {
			renewals, leaf = renewals+1, nb
		}
		if !rotated && time.Since(start) >= d/2 {
			rotatePassphrase(t, tg)
			rotated = true
		}
		if err := relay(); err != nil {
			t.Errorf("the relayed connection opened at the start failed at %s: %v", time.Since(start).Round(time.Second), err)
		}
		samples = append(samples, sample(start))
	}
	last := samples[len(samples)-1]
	for _, s := range samples {
		t.Logf("soak %6s: goroutines %4d, RSS %6d KiB, requests ok %d, failed %d", s.at, s.goroutines, s.rss, s.ok, s.failed)
	}
	t.Logf("soak over %s: %d leaf renewals of the listener, passphrase rotated: %v; goroutines %d -> %d (%.2fx), RSS %d -> %d KiB (%.2fx)",
		d, renewals, rotated, first.goroutines, last.goroutines, float64(last.goroutines)/float64(first.goroutines),
		first.rss, last.rss, float64(last.rss)/float64(first.rss))
	tr.finish(t, "soak")
	if renewals == 0 {
		t.Error("no leaf renewal during the soak; want the one-minute leaves renewed")
	}
	// Flat: what grows with time (a leak per request, per renewal) shows
	// as growth beyond the noise of connections in flight.
	if last.goroutines > first.goroutines+first.goroutines/2+20 {
		t.Errorf("goroutines grew from %d to %d", first.goroutines, last.goroutines)
	}
	if last.rss > 2*first.rss {
		t.Errorf("RSS grew from %d to %d KiB", first.rss, last.rss)
	}
}

// rotatePassphrase writes a new CA passphrase and waits for the re-seal.
func rotatePassphrase(t *testing.T, tg *tlsGateway) {
	t.Helper()
	keyring := filepath.Join(tg.stateDir, "drawbridge", "keyring.json")
	before, _ := os.ReadFile(keyring)
	if err := os.WriteFile(tg.cfg.PKI.PassphraseFile, []byte("the soak's rotated passphrase, long enough\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg.gw.secrets.Check()
	poll(t, 30*time.Second, "the re-seal", func() bool {
		now, _ := os.ReadFile(keyring)
		return !bytes.Equal(now, before)
	})
}
