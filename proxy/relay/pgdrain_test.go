package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/pgwire"
)

// tcpPair is two ends of one loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func pgMsg(typ byte, body ...byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{typ}, uint32(len(body)+4)), body...) //nolint:gosec // test sizes
}

// readMsg reads one typed message: its type and body.
func readMsg(t *testing.T, r *bufio.Reader) (byte, []byte) {
	t.Helper()
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		t.Fatalf("reading a message: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(head[1:])-4)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("reading a message body: %v", err)
	}
	return head[0], body
}

func expectEOF(t *testing.T, c net.Conn, r *bufio.Reader, who string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: read %q, %v after the session ended; want EOF", who, b, err)
	}
}

// freshBuffers lends a new buffer each time.
type freshBuffers struct{}

func (freshBuffers) Get() []byte { return make([]byte, 32<<10) }
func (freshBuffers) Put([]byte)  {}

// pgRelay runs a PostgreSQL relay between a test client and a test server,
// through the startup (AuthenticationOk, ReadyForQuery 'I').
func pgRelay(t *testing.T) (r *pair, client, server net.Conn, cr, sr *bufio.Reader, done chan struct{}) {
	t.Helper()
	client, rc := tcpPair(t)
	rs, server := tcpPair(t)
	r = &pair{client: rc, server: rs, idle: time.Minute, pg: newPGSession()}
	done = make(chan struct{})
	go func() { r.run(context.Background(), 0, freshBuffers{}); close(done) }()
	cr, sr = bufio.NewReader(client), bufio.NewReader(server)
	if _, err := client.Write(pgwire.StartupMessage(map[string]string{"user": "todo"}, "user")); err != nil {
		t.Fatal(err)
	}
	if _, err := pgwire.ReadStartup(sr); err != nil {
		t.Fatal(err)
	}
	_, _ = server.Write(append(pgMsg('R', 0, 0, 0, 0), pgMsg('Z', 'I')...))
	if typ, _ := readMsg(t, cr); typ != 'R' {
		t.Fatalf("got %q, want AuthenticationOk", typ)
	}
	if typ, body := readMsg(t, cr); typ != 'Z' || body[0] != 'I' {
		t.Fatalf("got %q %q, want ReadyForQuery I", typ, body)
	}
	return r, client, server, cr, sr, done
}

// ended checks how a drained session ends: the client reads FATAL 57P01
// then EOF, the server reads Terminate then EOF, and nothing else.
func ended(t *testing.T, r *pair, client, server net.Conn, cr, sr *bufio.Reader, done chan struct{}) {
	t.Helper()
	typ, body := readMsg(t, cr)
	if e, _, _ := pgwire.ReadError(bufio.NewReader(bytes.NewReader(pgMsg(typ, body...)))); typ != 'E' || e == nil || e.Code != pgwire.AdminShutdown {
		t.Fatalf("the client got %q %q, want ErrorResponse 57P01", typ, body)
	}
	expectEOF(t, client, cr, "client")
	if typ, _ := readMsg(t, sr); typ != pgwire.MsgTerminate {
		t.Fatalf("the server got %q, want Terminate", typ)
	}
	expectEOF(t, server, sr, "server")
	<-done
	if r.reason != closeDrained {
		t.Errorf("close reason %q, want %q", r.reason, closeDrained)
	}
}

func TestPostgresDrainMessages(t *testing.T) {
	t.Run("idle session ends at once", func(t *testing.T) {
		r, client, server, cr, sr, done := pgRelay(t)
		r.drain()
		ended(t, r, client, server, cr, sr, done)
		// What the client sends now never reaches the server (checked by ended's EOF there).
		_, _ = client.Write(pgMsg('Q', []byte("SELECT 1\x00")...))
	})

	t.Run("a transaction finishes first", func(t *testing.T) {
		r, client, server, cr, sr, done := pgRelay(t)
		_, _ = client.Write(pgMsg('Q', []byte("BEGIN\x00")...))
		if typ, _ := readMsg(t, sr); typ != 'Q' {
			t.Fatalf("server got %q", typ)
		}
		_, _ = server.Write(append(pgMsg('C', []byte("BEGIN\x00")...), pgMsg('Z', 'T')...))
		readMsg(t, cr)
		readMsg(t, cr)
		r.drain() // inside a transaction: the session goes on
		_, _ = client.Write(pgMsg('Q', []byte("COMMIT\x00")...))
		if typ, body := readMsg(t, sr); typ != 'Q' || string(body) != "COMMIT\x00" {
			t.Fatalf("after the drain began the server got %q %q, want the COMMIT relayed", typ, body)
		}
		// The answer split across writes, to cross chunk boundaries.
		answer := append(pgMsg('C', []byte("COMMIT\x00")...), pgMsg('Z', 'I')...)
		_, _ = server.Write(answer[:3])
		time.Sleep(10 * time.Millisecond)
		_, _ = server.Write(answer[3:])
		if typ, _ := readMsg(t, cr); typ != 'C' {
			t.Fatalf("client got %q, want CommandComplete", typ)
		}
		if typ, body := readMsg(t, cr); typ != 'Z' || body[0] != 'I' {
			t.Fatalf("client got %q %q, want ReadyForQuery I", typ, body)
		}
		ended(t, r, client, server, cr, sr, done)
	})

	t.Run("an extended-protocol batch waits for its Sync", func(t *testing.T) {
		r, client, server, cr, sr, done := pgRelay(t)
		_, _ = client.Write(append(pgMsg('P', 0, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0, 0, 0), pgMsg('B', 0, 0, 0, 0, 0, 0, 0, 0)...))
		readMsg(t, sr)
		readMsg(t, sr)
		r.drain() // status I, nothing pending, but a batch is under way
		_, _ = client.Write(append(pgMsg('E', 0, 0, 0, 0, 0), pgMsg('S')...))
		readMsg(t, sr)
		if typ, _ := readMsg(t, sr); typ != 'S' {
			t.Fatalf("server got %q, want the Sync relayed", typ)
		}
		_, _ = server.Write(append(append(pgMsg('1'), pgMsg('2')...), pgMsg('Z', 'I')...))
		for _, want := range []byte{'1', '2', 'Z'} {
			if typ, _ := readMsg(t, cr); typ != want {
				t.Fatalf("client got %q, want %q", typ, want)
			}
		}
		ended(t, r, client, server, cr, sr, done)
	})
}
