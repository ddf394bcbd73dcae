package proxy_test

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
)

// psqlSession is a psql process reading SQL from a pipe: one long-lived
// session through the gateway, driven a statement at a time.
type psqlSession struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *drawtest.Buffer
	done chan error
}

func startPsql(t *testing.T, conninfo string) *psqlSession {
	t.Helper()
	s := &psqlSession{out: &drawtest.Buffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command("psql", conninfo, "-X", "-tA", "-v", "ON_ERROR_STOP=1")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	var err error
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		_ = s.in.Close()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
		}
	})
	return s
}

func (s *psqlSession) send(t *testing.T, sql string) {
	t.Helper()
	if _, err := io.WriteString(s.in, sql+"\n"); err != nil {
		t.Fatalf("writing to psql: %v (output: %s)", err, s.out.String())
	}
}

// TestPostgresDrainEndsSessionsBetweenTransactions stops a gateway relaying
// two sessions to a real PostgreSQL: one idle, one inside a transaction. The
// idle one is ended at once, cleanly (Terminate to the server, 57P01 to the
// client); the other keeps running until its transaction commits, is ended
// right after the commit's ReadyForQuery, and the commit is in the table.
// The drain is over long before the grace.
func TestPostgresDrainEndsSessionsBetweenTransactions(t *testing.T) {
	certs := newPGCerts(t)
	db := startPostgres(t, certs)
	gw := pgGateway(t, certs, db.port) // shutdown_grace 5s
	port := gw.srv.Addr("edge").(*net.TCPAddr).Port
	ci := func(app string) string {
		return throughGateway(port, certs, certs.clientCrt, certs.clientKey) + " application_name=" + app
	}
	if out, err := psql(ci("setup"), "CREATE TABLE drained (n int)"); err != nil {
		t.Fatalf("create table: %v %s", err, out)
	}
	state := func(app string) string {
		return db.admin(t, fmt.Sprintf("SELECT coalesce(max(state), 'gone') FROM pg_stat_activity WHERE application_name = '%s'", app))
	}

	idle := startPsql(t, ci("idle"))
	idle.send(t, "SELECT 1;")
	inTx := startPsql(t, ci("intx"))
	inTx.send(t, "BEGIN; INSERT INTO drained VALUES (1);")
	drawtest.WaitFor(t, "the idle session idle", func() bool { return state("idle") == "idle" })
	drawtest.WaitFor(t, "the other session in its transaction", func() bool { return state("intx") == "idle in transaction" })

	began := time.Now()
	gw.cancel()
	drawtest.WaitFor(t, "the idle session ended by the drain", func() bool { return state("idle") == "gone" })
	time.Sleep(300 * time.Millisecond)
	if s := state("intx"); s != "idle in transaction" {
		t.Fatalf("the session inside a transaction is %q during the drain, want it kept (idle in transaction)", s)
	}
	select {
	case <-gw.done:
		t.Fatal("the gateway stopped while a session was inside a transaction")
	default:
	}

	inTx.send(t, "INSERT INTO drained VALUES (2); COMMIT;")
	drawtest.WaitFor(t, "the transaction's session ended after its commit", func() bool { return state("intx") == "gone" })
	select {
	case err := <-gw.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		gw.done <- nil
	case <-time.After(4 * time.Second):
		t.Fatal("the drain did not finish once both sessions had ended")
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("the drain took %s; both sessions were ended at their boundary, want well under the 5s grace", took)
	}
	if n := db.admin(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('idle', 'intx')"); n != "0" {
		t.Errorf("%s sessions left on the server", n)
	}

	// The committed rows are there: the session was not cut inside its transaction.
	out, err := psql(conninfo(db.port, certs, certs.clientCrt, certs.clientKey), "SELECT string_agg(n::text, ',' ORDER BY n) FROM drained")
	if err != nil || out != "1,2" {
		t.Errorf("rows after the drain = %q (%v), want 1,2", out, err)
	}

	// The idle client's connection is gone: its next statement fails on the
	// connection (a pool checks for that before it hands a connection out:
	// examples/todo/api). TestPostgresDrainMessages (proxy/pgdrain_test.go) shows what it is told.
	idle.send(t, "SELECT 2;")
	_ = idle.in.Close()
	select {
	case <-idle.done:
	case <-time.After(10 * time.Second):
		t.Fatal("psql did not exit")
	}
	if out := idle.out.String(); !strings.Contains(out, "closed") && !strings.Contains(out, "lost") {
		t.Errorf("the idle client's psql said %q after the drain, want a closed connection", out)
	}

	// No session was cut inside a transaction (the health check's own
	// connections, closed after the TLS handshake, are logged as resets).
	if logs := db.logs(); strings.Contains(logs, "unexpected EOF") {
		t.Errorf("the server's log shows a session cut without Terminate:\n%s", logs)
	}
}
