package proxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/cert"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/pki/source"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// BenchmarkMutualHandshake is .ci/bench-http's mtls-handshake suite:
// new mutual-TLS connections (ECDSA P-256 certificates, a client offering
// X25519 only and no session resumption), one GET each, against
//
//   - bare: crypto/tls with the same certificate and
//     RequireAndVerifyClientCert, answering the request itself and closing
//     (.ci/stdproxy -bare-tls)
//   - drawbridge: a mutual listener built as cmd builds one without a pki
//     section (certificate: files, client_ca_file), proxying to a backend
//
// Each server runs alone in a child process (this test binary, re-run as
// TestMutualHandshakeServer), as in the pinned benchmark: in one process
// with the client, wakeups and collections are shared and most of the
// difference hides. srv-µs/conn is the child's CPU per connection, the
// figure to compare (benchstat); ns/op is the client's wall time. Run
// without -race (DRAWBRIDGE_HANDSHAKE_PROFILES=DIR: each server writes
// DIR/bare.pprof and DIR/drawbridge.pprof):
//
//	go test -run '^$' -bench MutualHandshake -count 8 ./proxy/
func BenchmarkMutualHandshake(b *testing.B) {
	env := newMutualEnv(b)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "hello from the backend\n")
	}))
	defer backend.Close()
	for _, kind := range []string{"bare", "drawbridge"} {
		b.Run(kind, func(b *testing.B) {
			srv := startHandshakeServer(b, env, kind, hostOf(backend))
			before := srv.cpu(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := env.oneGET(srv.addr); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(srv.cpu(b)-before)/1e3/float64(b.N), "srv-µs/conn")
		})
	}
}

// TestMutualHandshakeServer is the child process of
// BenchmarkMutualHandshake; without its environment it skips. It serves
// until stdin closes and answers each "cpu" line with its CPU time (ns).
func TestMutualHandshakeServer(t *testing.T) {
	kind := os.Getenv("DRAWBRIDGE_HANDSHAKE_SERVER")
	if kind == "" {
		t.Skip("the child process of BenchmarkMutualHandshake")
	}
	env := loadMutualEnv(t, os.Getenv("DRAWBRIDGE_HANDSHAKE_DIR"))
	var addr string
	switch kind {
	case "bare":
		addr = startBareTLS(t, env)
	default:
		addr = startMutualGateway(t, env, os.Getenv("DRAWBRIDGE_HANDSHAKE_BACKEND"))
	}
	fmt.Printf("listening %s\n", addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		fmt.Printf("cpu %d\n", ru.Utime.Nano()+ru.Stime.Nano())
	}
}

type handshakeServer struct {
	addr  string
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startHandshakeServer(b *testing.B, env *mutualEnv, kind, backend string) *handshakeServer {
	b.Helper()
	args := []string{"-test.run", "^TestMutualHandshakeServer$", "-test.v"}
	if dir := os.Getenv("DRAWBRIDGE_HANDSHAKE_PROFILES"); dir != "" { // a CPU profile of each server
		args = append(args, "-test.cpuprofile", filepath.Join(dir, kind+".pprof"))
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DRAWBRIDGE_HANDSHAKE_SERVER="+kind, "DRAWBRIDGE_HANDSHAKE_DIR="+env.dir,
		"DRAWBRIDGE_HANDSHAKE_BACKEND="+backend)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	s := &handshakeServer{stdin: stdin, out: bufio.NewScanner(stdout)}
	for s.out.Scan() {
		if a, ok := strings.CutPrefix(s.out.Text(), "listening "); ok {
			s.addr = a
			return s
		}
	}
	b.Fatalf("the %s server did not start", kind)
	return nil
}

// cpu is the child's CPU time so far, in ns.
func (s *handshakeServer) cpu(b *testing.B) int64 {
	b.Helper()
	if _, err := io.WriteString(s.stdin, "cpu\n"); err != nil {
		b.Fatal(err)
	}
	for s.out.Scan() {
		if v, ok := strings.CutPrefix(s.out.Text(), "cpu "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("the server process ended")
	return 0
}

type mutualEnv struct {
	dir                       string
	certFile, keyFile, caFile string
	serverCert                tls.Certificate
	clientCAs                 *x509.CertPool
	client                    *tls.Config
}

// newMutualEnv writes a CA, a server pair for localhost and a client pair
// (spiffe://bench.test/client) as PEM files in a directory of its own.
func newMutualEnv(b *testing.B) *mutualEnv {
	b.Helper()
	ca := pkitest.NewCA(b, "bench.test")
	dir := b.TempDir()
	writePEMPair(b, dir, "server", ca.Leaf(b, "", "localhost"))
	writePEMPair(b, dir, "client", ca.Leaf(b, "client"))
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca.PEM(), 0o600); err != nil {
		b.Fatal(err)
	}
	return loadMutualEnv(b, dir)
}

func writePEMPair(tb testing.TB, dir, name string, c tls.Certificate) {
	tb.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range []struct {
		ext, typ string
		der      []byte
	}{{".crt", "CERTIFICATE", c.Certificate[0]}, {".key", "PRIVATE KEY", key}} {
		if err := os.WriteFile(filepath.Join(dir, name+f.ext), pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

func loadMutualEnv(tb testing.TB, dir string) *mutualEnv {
	tb.Helper()
	env := &mutualEnv{dir: dir, certFile: filepath.Join(dir, "server.crt"), keyFile: filepath.Join(dir, "server.key"),
		caFile: filepath.Join(dir, "ca.crt"), clientCAs: x509.NewCertPool()}
	var err error
	if env.serverCert, err = tls.LoadX509KeyPair(env.certFile, env.keyFile); err != nil {
		tb.Fatal(err)
	}
	client, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		tb.Fatal(err)
	}
	caPEM, err := os.ReadFile(env.caFile)
	if err != nil || !env.clientCAs.AppendCertsFromPEM(caPEM) {
		tb.Fatalf("reading %s: %v", env.caFile, err)
	}
	// As .ci/loadgen -mode handshake: X25519 only, no session cache.
	env.client = &tls.Config{ServerName: "localhost", RootCAs: env.clientCAs, MinVersion: tls.VersionTLS12,
		CurvePreferences: []tls.CurveID{tls.X25519}, SessionTicketsDisabled: true, Certificates: []tls.Certificate{client}}
	return env
}

// oneGET opens a connection, does the full handshake, sends one GET and
// reads the whole answer, as loadgen does.
func (env *mutualEnv) oneGET(addr string) error {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	c := tls.Client(raw, env.client)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /64 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// startBareTLS is .ci/stdproxy -bare-tls: one fixed answer per connection.
func startBareTLS(tb testing.TB, env *mutualEnv) string {
	tb.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{env.serverCert},
		MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: env.clientCAs})
	if err != nil {
		tb.Fatal(err)
	}
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 23\r\nConnection: close\r\n\r\nhello from the backend\n"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 {
						break
					}
				}
				_, _ = io.WriteString(c, answer)
			}()
		}
	}()
	tb.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// startMutualGateway runs drawbridge's mutual listener as .ci/bench-http
// configures it (tls: {mode: mutual, certificate: files, client_ca_file}),
// access log on.
func startMutualGateway(tb testing.TB, env *mutualEnv, backend string) string {
	tb.Helper()
	cfg := oneRoute(backend)
	l := cfg.Listeners["edge"]
	l.Address = "127.0.0.1:0"
	l.TLS = proxy.ListenerTLS{Mode: proxy.TLSMutual, Certificate: proxy.CertificateFiles,
		CertFile: env.certFile, KeyFile: env.keyFile, ClientCAFile: env.caFile}
	cfg.Listeners["edge"] = l
	srv, err := proxy.New(cfg, proxy.Deps{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), TLS: filesTLS{}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Bind(); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return srv.Addr("edge").String()
}

// filesTLS builds a listener's config as cmd's provider does without a pki
// section: the files through source.FileSource, client chains verified by
// crypto/tls against client_ca_file.
type filesTLS struct{}

func (filesTLS) ServerTLS(l proxy.ListenerConfig) (*tls.Config, error) {
	fs, err := source.NewFileSource(source.FileSourceConfig{CertFile: l.TLS.CertFile, KeyFile: l.TLS.KeyFile}, part.Deps{})
	if err != nil {
		return nil, err
	}
	pemCAs, err := os.ReadFile(l.TLS.ClientCAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemCAs) {
		return nil, errors.New("client_ca_file: no certificate")
	}
	profile := cert.Internal
	if l.TLS.Profile == proxy.ProfileEdge {
		profile = cert.Edge
	}
	return cert.StaticServerConfig(cert.ServerOptions{Mutual: l.TLS.Mode == proxy.TLSMutual, Profile: profile,
		NextProtos: []string{"h2", "http/1.1"}, Certificates: fs, ClientCAs: pool})
}

func (filesTLS) ClientTLS(string, proxy.UpstreamTLS) (*tls.Config, error) {
	return nil, errors.New("no upstream TLS in this benchmark")
}
