package proxy_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/health"
	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/pki/pkitest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
)

// These tests run a real PostgreSQL server (Debian's postgresql-15) with
// ssl=on and hostssl ... clientcert=verify-full, and real psql and pgbench
// clients. .ci/install-deps installs the packages; without them the tests
// skip, except under CI where that is a failure.

const pgBin = "/usr/lib/postgresql/15/bin"

func requirePostgres(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBin, "postgres")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is not installed (apt-get install postgresql-15): %v", err)
		}
		t.Skip("PostgreSQL 15 server not installed")
	}
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("psql not installed")
	}
}

// pgCerts is the trust set of one test: a CA, and files for the server,
// the database user's client certificate, and an impostor.
type pgCerts struct {
	ca              *pkitest.CA
	dir             string
	caFile          string
	serverCrt       string
	serverKey       string
	clientCrt       string // CN "todo": the database user
	clientKey       string
	gatewayCert     tls.Certificate // what drawbridge presents toward the server (CN "todo")
	gatewayListener tls.Certificate // drawbridge's listener certificate (localhost)
}

func writePair(t *testing.T, dir, name string, c tls.Certificate, owner string) (string, string) {
	t.Helper()
	var certPEM bytes.Buffer
	for _, der := range c.Certificate {
		_ = pem.Encode(&certPEM, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(crt, certPEM.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if owner != "" {
		chown(t, owner, crt, key)
	}
	return crt, key
}

func chown(t *testing.T, owner string, paths ...string) {
	t.Helper()
	out, err := exec.Command("chown", append([]string{owner}, paths...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
}

func newPGCerts(t *testing.T) *pgCerts {
	t.Helper()
	dir := traversableTempDir(t)
	c := &pgCerts{ca: pkitest.NewCA(t, "drawbridge.internal"), dir: dir}
	c.caFile = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(c.caFile, c.ca.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	c.serverCrt, c.serverKey = writePair(t, dir, "server", c.ca.Leaf(t, "db", "localhost"), "postgres")
	c.clientCrt, c.clientKey = writePair(t, dir, "client", c.ca.Leaf(t, "todo"), "")
	c.gatewayCert = c.ca.Leaf(t, "todo")
	c.gatewayListener = c.ca.Leaf(t, "edge", "localhost")
	return c
}

// ServerTLS and ClientTLS make pgCerts the gateway's TLSProvider: a mutual
// listener that requires a client certificate from the CA, and a client
// identity the database maps to its user.
func (c *pgCerts) ServerTLS(proxy.ListenerConfig) (*tls.Config, error) {
	return &tls.Config{Certificates: []tls.Certificate{c.gatewayListener}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: c.ca.Pool(), MinVersion: tls.VersionTLS13}, nil
}

func (c *pgCerts) ClientTLS(string, proxy.UpstreamTLS) (*tls.Config, error) {
	return &tls.Config{Certificates: []tls.Certificate{c.gatewayCert}, RootCAs: c.ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13}, nil
}

type pgServer struct {
	port   int
	dir    string // the Unix socket directory
	cmd    *exec.Cmd
	exited chan struct{}
	log    *syncBuffer // the server's stderr
}

func (s *pgServer) logs() string { return s.log.String() }

// startPostgres runs a throwaway cluster as the postgres user: TLS on,
// every TCP connection must be TLS with a client certificate whose CN is
// the user, plus the password; plain TCP is rejected.
func startPostgres(t *testing.T, certs *pgCerts) *pgServer {
	t.Helper()
	requirePostgres(t)
	base := traversableTempDir(t)
	data := filepath.Join(base, "data")
	_ = os.Mkdir(data, 0o700)
	chown(t, "postgres:postgres", data)
	asPostgres := func(args ...string) *exec.Cmd {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: postgresUser(t)}
		return cmd
	}
	if out, err := asPostgres(filepath.Join(pgBin, "initdb"), "-U", "postgres", "--auth-local=trust", "--auth-host=reject", "-D", data).CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	hba := "local all postgres trust\nhostssl todo todo 127.0.0.1/32 scram-sha-256 clientcert=verify-full\nhostnossl all all all reject\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	chown(t, "postgres:postgres", filepath.Join(data, "pg_hba.conf"))
	sock := filepath.Join(base, "sock")
	_ = os.Mkdir(sock, 0o755)
	chown(t, "postgres:postgres", sock)
	port := freePort(t)
	srv := &pgServer{port: port, dir: sock, exited: make(chan struct{})}
	srv.cmd = asPostgres(filepath.Join(pgBin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+sock,
		"-c", "ssl=on", "-c", "ssl_cert_file="+certs.serverCrt, "-c", "ssl_key_file="+certs.serverKey,
		"-c", "ssl_ca_file="+certs.caFile, "-c", "password_encryption=scram-sha-256", "-c", "fsync=off")
	logs := &syncBuffer{}
	srv.cmd.Stdout, srv.cmd.Stderr = logs, logs
	srv.log = logs
	if err := srv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.cmd.Wait(); close(srv.exited) }()
	t.Cleanup(func() { srv.stop() })
	deadline := time.Now().Add(30 * time.Second)
	for exec.Command(filepath.Join(pgBin, "pg_isready"), "-h", sock, "-p", strconv.Itoa(port), "-q").Run() != nil {
		select {
		case <-srv.exited:
			t.Fatalf("postgres exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres did not start:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.admin(t, "CREATE ROLE todo LOGIN PASSWORD 'todo-password'")
	srv.admin(t, "CREATE DATABASE todo OWNER todo")
	return srv
}

// traversableTempDir is a temporary directory the postgres user can reach:
// the test's own temp root is 0700 for root.
func traversableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// stop shuts the server down fast (SIGINT) and waits for it.
func (s *pgServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// admin runs SQL as the superuser over the Unix socket.
func (s *pgServer) admin(t *testing.T, sql string) string {
	t.Helper()
	cmd := exec.Command("psql", "-h", s.dir, "-p", strconv.Itoa(s.port),
		"-U", "postgres", "-d", "postgres", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: postgresUser(t)}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql as postgres: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// postgresUser is the credential of Debian's postgres account: the server
// refuses to run as root.
func postgresUser(t *testing.T) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres user (apt-get install postgresql-15): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// conninfo is a libpq connection string to port with the given client certificate.
//
// Through drawbridge, clients that use TLS to drawbridge set
// channel_binding=disable: SCRAM channel binding (tls-server-end-point)
// ties the password exchange to the certificate of the TLS session the
// client sees, and a hop that terminates TLS necessarily presents a
// different one than the server; the mutual TLS on both legs is what
// defeats a man in the middle instead. (PgBouncer documents the same.)
func throughGateway(port int, certs *pgCerts, crt, key string) string {
	return conninfo(port, certs, crt, key) + " channel_binding=disable"
}

func conninfo(port int, certs *pgCerts, crt, key string) string {
	s := fmt.Sprintf("host=localhost port=%d dbname=todo user=todo password=todo-password sslmode=verify-full sslrootcert=%s connect_timeout=5",
		port, certs.caFile)
	if crt != "" {
		s += " sslcert=" + crt + " sslkey=" + key
	}
	return s
}

func psql(conninfo, sql string) (string, error) {
	out, err := exec.Command("psql", conninfo, "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func pgGateway(t *testing.T, certs *pgCerts, dbPort int) *testGateway {
	t.Helper()
	cfg := proxy.Config{
		Listeners: map[string]proxy.ListenerConfig{"edge": {
			Protocol: proxy.ProtocolPostgres,
			TLS:      proxy.ListenerTLS{Mode: proxy.TLSMutual},
			Routes:   []proxy.RouteConfig{{Upstream: "db"}},
		}},
		Upstreams: map[string]proxy.UpstreamConfig{"db": {
			Protocol: proxy.ProtocolPostgres,
			Targets:  []string{fmt.Sprintf("127.0.0.1:%d", dbPort)},
			TLS:      proxy.UpstreamTLS{ServerName: "localhost"},
			// The PostgreSQL check: SSLRequest, then a TLS handshake with
			// drawbridge's client certificate.
			Health: health.CheckConfig{Type: health.TypePostgres, Interval: 200 * time.Millisecond,
				UnhealthyInterval: 200 * time.Millisecond, Timeout: time.Second, HealthyThreshold: 1, UnhealthyThreshold: 1},
		}},
		ShutdownGrace: 5 * time.Second,
	}
	return startGatewayWith(t, cfg, proxy.Deps{TLS: certs})
}

func TestRealPostgresThroughDrawbridge(t *testing.T) {
	certs := newPGCerts(t)
	db := startPostgres(t, certs)
	gw := pgGateway(t, certs, db.port)
	gwPort := gw.srv.Addr("edge").(*net.TCPAddr).Port

	// Through drawbridge, verify-full on the client leg; drawbridge's own
	// client certificate (CN todo) satisfies clientcert=verify-full on the server leg.
	got, err := psql(throughGateway(gwPort, certs, certs.clientCrt, certs.clientKey),
		"SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
	if err != nil {
		t.Fatalf("psql through drawbridge: %v\n%s", err, got)
	}
	if !strings.HasPrefix(got, "t|TLSv1.3") {
		t.Errorf("pg_stat_ssl for the relayed session = %q, want TLS 1.3", got)
	}

	otherCrt, otherKey := writeOther(t, "todo")
	refusals := map[string]string{
		"no client certificate":   throughGateway(gwPort, certs, "", ""),
		"another CA's cert":       throughGateway(gwPort, certs, otherCrt, otherKey),
		"sslmode=disable (plain)": fmt.Sprintf("host=localhost port=%d dbname=todo user=todo password=todo-password sslmode=disable connect_timeout=5", gwPort),
	}
	for name, ci := range refusals {
		if out, err := psql(ci, "SELECT 1"); err == nil {
			t.Errorf("%s: psql connected through drawbridge: %s", name, out)
		} else if name == "sslmode=disable (plain)" && !strings.Contains(out, "requires TLS") {
			t.Errorf("plaintext client got %q, want drawbridge's PostgreSQL error saying TLS is required", out)
		}
	}

	// The server never saw a plaintext connection: every client backend is TLS.
	if n := db.admin(t, "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'client backend' AND a.usename = 'todo' AND NOT s.ssl"); n != "0" {
		t.Errorf("%s plaintext sessions on the server", n)
	}
	if out, err := psql(fmt.Sprintf("host=localhost port=%d dbname=todo user=todo password=todo-password sslmode=disable connect_timeout=5", db.port), "SELECT 1"); err == nil {
		t.Errorf("the server accepted plain TCP directly: %s", out)
	}

	// The health check marks a stopped server down, and the listener then
	// answers with a PostgreSQL error instead of dialling.
	if err := gw.srv.UpstreamReady("db"); err != nil {
		t.Fatalf("db upstream not ready while the server runs: %v", err)
	}
	db.stop()
	drawtest.WaitFor(t, "the health check to mark the stopped server down", func() bool { return gw.srv.UpstreamReady("db") != nil })
	if out, err := psql(throughGateway(gwPort, certs, certs.clientCrt, certs.clientKey), "SELECT 1"); err == nil || !strings.Contains(out, "no database target is available") {
		t.Errorf("with the server down psql got %q, %v; want drawbridge's 57P03 error", out, err)
	}
}

// writeOther issues a certificate for service from an unrelated CA.
func writeOther(t *testing.T, service string) (string, string) {
	t.Helper()
	other := pkitest.NewCA(t, "drawbridge.internal")
	return writePair(t, t.TempDir(), "other", other.Leaf(t, service), "")
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+)`)

// TestPgbenchThroughVersusDirect reports transactions per second of the
// same pgbench run straight to the server and through drawbridge, in one
// run. Where nginx's stream module is installed it also runs pgbench through
// a bare TCP relay (TLS passed through end to end, so the relay does no
// crypto and no protocol work): the most any relay can reach on this
// machine, which puts drawbridge's own cost apart from the extra hop's.
// Set DRAWBRIDGE_PGBENCH_SECONDS to lengthen it (default 5) and
// DRAWBRIDGE_PGBENCH_CLIENTS for the number of clients (default 4).
func TestPgbenchThroughVersusDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("pgbench comparison skipped in -short mode")
	}
	certs := newPGCerts(t)
	db := startPostgres(t, certs)
	gw := pgGateway(t, certs, db.port)
	gwPort := gw.srv.Addr("edge").(*net.TCPAddr).Port
	secs := os.Getenv("DRAWBRIDGE_PGBENCH_SECONDS")
	if secs == "" {
		secs = "5"
	}
	clients := os.Getenv("DRAWBRIDGE_PGBENCH_CLIENTS")
	if clients == "" {
		clients = "4"
	}
	direct := conninfo(db.port, certs, certs.clientCrt, certs.clientKey)
	through := throughGateway(gwPort, certs, certs.clientCrt, certs.clientKey)
	if out, err := exec.Command(filepath.Join(pgBin, "pgbench"), "-i", "-q", "-s", "2", direct).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	run := func(ci string) float64 {
		out, err := exec.Command(filepath.Join(pgBin, "pgbench"), "-c", clients, "-j", "1", "-T", secs, "-n", ci, pgbenchMode()).CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench: %v\n%s", err, out)
		}
		m := tpsRE.FindSubmatch(out)
		if m == nil {
			t.Fatalf("no tps in pgbench output:\n%s", out)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	relayPort := nginxStreamRelay(t, db.port)
	var dTPS, gTPS, rTPS float64
	for range 2 {
		dTPS += run(direct) / 2
		gTPS += run(through) / 2
		if relayPort != 0 {
			rTPS += run(conninfo(relayPort, certs, certs.clientCrt, certs.clientKey)) / 2
		}
	}
	t.Logf("pgbench tps: direct %.0f, through drawbridge %.0f, ratio %.2f (target >= 0.90)", dTPS, gTPS, gTPS/dTPS)
	if relayPort != 0 {
		t.Logf("pgbench tps through a bare TCP relay (nginx stream, TLS passed through): %.0f, ratio %.2f to direct; drawbridge reaches %.2f of it",
			rTPS, rTPS/dTPS, gTPS/rTPS)
	}
	if gTPS == 0 {
		t.Fatal("no transactions went through drawbridge")
	}
}

// nginxStreamRelay starts nginx's stream module relaying a loopback port to
// target and returns the port, or 0 (and says so) when nginx or its stream
// module is not installed: the relay is a reference point, not a need.
func nginxStreamRelay(t *testing.T, target int) int {
	t.Helper()
	const module = "/usr/lib/nginx/modules/ngx_stream_module.so"
	nginx, err := exec.LookPath("nginx")
	if _, modErr := os.Stat(module); err != nil || modErr != nil {
		t.Log("no bare-relay reference: apt-get install nginx libnginx-mod-stream to get one")
		return 0
	}
	port, dir := freePort(t), t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// One process, no master: killing it leaves nothing behind.
	conf := fmt.Sprintf(`load_module %s;
master_process off; daemon off; error_log stderr warn; pid %s;
events {}
stream { server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; } }
`, module, filepath.Join(dir, "nginx.pid"), port, target)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(nginx, "-p", dir, "-c", confFile)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nginx stream relay:\n%s", logs.String())
		}
	})
	drawtest.WaitFor(t, "the nginx stream relay to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return port
}

// pgbenchMode is DRAWBRIDGE_PGBENCH_MODE (e.g. -S for select only), or
// pgbench's default TPC-B-like transaction.
func pgbenchMode() string {
	if m := os.Getenv("DRAWBRIDGE_PGBENCH_MODE"); m != "" {
		return m
	}
	return "--no-vacuum"
}
