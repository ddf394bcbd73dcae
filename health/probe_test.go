package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy/pgwire"
)

// fakePostgres answers an SSLRequest with answer and, for 'S', runs a TLS
// server handshake with conf.
func fakePostgres(t *testing.T, answer byte, conf *tls.Config) string {
	t.Helper()
	return drawtest.ServeTCP(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		var req [8]byte
		if _, err := io.ReadFull(c, req[:]); err != nil {
			return
		}
		_, _ = c.Write([]byte{answer})
		if answer == 'S' {
			_ = tls.Server(c, conf).Handshake()
		}
	})
}

func TestPostgresProbe(t *testing.T) {
	leakCheck(t)
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	trusting := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	trusting.ServerName = "example.com" // httptest's certificate names example.com
	stranger := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "example.com"}
	tests := []struct {
		name    string
		answer  byte
		client  *tls.Config
		wantErr string
	}{
		{"TLS accepted and verified", 'S', trusting, ""},
		{"TLS accepted, unknown CA", 'S', stranger, "TLS handshake"},
		{"plain server, no TLS wanted", 'N', nil, ""},
		{"plain server, TLS wanted", 'N', trusting, "refused TLS"},
		{"not PostgreSQL", 'H', nil, "not a PostgreSQL server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakePostgres(t, tt.answer, srv.TLS)
			probe, err := NewProbe(CheckConfig{Type: TypePostgres}, ProbeEnv{TLS: tt.client})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err = probe(ctx, addr)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("probe = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestSSLRequestIsPgwires: the probe's copy of the SSLRequest (health may
// not import proxy) is the packet proxy/pgwire builds and parses.
func TestSSLRequestIsPgwires(t *testing.T) {
	if want := pgwire.SSLRequest(); !bytes.Equal(sslRequest, want) {
		t.Errorf("got % x, want pgwire's % x", sslRequest, want)
	}
	st, err := pgwire.ReadStartup(bytes.NewReader(sslRequest))
	if err != nil || st.Code != pgwire.SSLRequestCode {
		t.Errorf("pgwire reads %+v, %v; want code %d", st, err, pgwire.SSLRequestCode)
	}
}
