package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// Probe checks one target address once; nil means it passed. The context
// carries the check's timeout.
type Probe func(ctx context.Context, addr string) error

// ProbeEnv is what a probe borrows from the upstream it checks, so checks
// travel like real traffic: same transport, same TLS identity.
type ProbeEnv struct {
	// Transport sends http checks; the upstream's own. Required for http.
	Transport http.RoundTripper
	// Scheme of http checks: "http" or "https". Zero means http.
	Scheme string
	// TLS is the client configuration of tls checks. Nil means a default one.
	TLS *tls.Config
	// Dialer opens the connections of tcp and tls checks. Nil means a default one.
	Dialer *net.Dialer
}

// UserAgent identifies drawbridge's checks in the targets' logs.
const UserAgent = "drawbridge-health-check"

// NewProbe builds the probe cfg describes (cfg defaulted and validated).
func NewProbe(cfg CheckConfig, env ProbeEnv) (Probe, error) {
	if env.Dialer == nil {
		env.Dialer = &net.Dialer{}
	}
	switch cfg.Type {
	case TypeHTTP:
		if env.Transport == nil {
			return nil, errors.New("http checks need the upstream's transport")
		}
		return httpProbe(cfg, env)
	case TypeTCP:
		return func(ctx context.Context, addr string) error {
			c, err := env.Dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				return err
			}
			return c.Close()
		}, nil
	case TypeTLS:
		return tlsProbe(env), nil
	case TypePostgres:
		return postgresProbe(env), nil
	}
	return nil, fmt.Errorf("unknown check type %q", cfg.Type)
}

func httpProbe(cfg CheckConfig, env ProbeEnv) (Probe, error) {
	lo, hi, err := ParseStatusRange(cfg.ExpectStatus)
	if err != nil {
		return nil, err
	}
	scheme := env.Scheme
	if scheme == "" {
		scheme = "http"
	}
	header := http.Header{"User-Agent": {UserAgent}}
	for k, v := range cfg.Headers {
		header.Set(k, v)
	}
	return func(ctx context.Context, addr string) error {
		req, err := http.NewRequestWithContext(ctx, cfg.Method, scheme+"://"+addr+cfg.Path, nil)
		if err != nil {
			return err
		}
		req.Header = header.Clone()
		if cfg.Host != "" {
			req.Host = cfg.Host
		}
		resp, err := env.Transport.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		// Reading the body (bounded) lets the connection be reused.
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode < lo || resp.StatusCode > hi {
			return fmt.Errorf("status %d, want %s", resp.StatusCode, cfg.ExpectStatus)
		}
		if cfg.ExpectBody != "" {
			if err != nil {
				return fmt.Errorf("reading body: %w", err)
			}
			if !strings.Contains(string(body), cfg.ExpectBody) {
				return fmt.Errorf("body does not contain %q", cfg.ExpectBody)
			}
		}
		return nil
	}, nil
}

func tlsProbe(env ProbeEnv) Probe {
	return func(ctx context.Context, addr string) error {
		c, err := env.Dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		return handshake(ctx, c, env.TLS, addr)
	}
}

// handshake completes a TLS client handshake on c, verifying the server as
// the upstream's real traffic does.
func handshake(ctx context.Context, c net.Conn, base *tls.Config, addr string) error {
	if base == nil {
		base = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	conf := base.Clone()
	if conf.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		conf.ServerName = host
	}
	if err := tls.Client(c, conf).HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	return nil
}

// sslRequest is PostgreSQL's SSLRequest message: length 8, code 80877103.
// proxy/pgwire (SSLRequest) is where the wire protocol lives, but health
// never imports proxy (CONTRIBUTING.md's rule: the proxy uses health, not
// the reverse), so these eight bytes are the one copy, and
// TestSSLRequestIsPgwires keeps them equal to pgwire's.
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// postgresProbe asks for TLS the way a PostgreSQL client starts: a server
// answers 'S' or 'N'. With 'S' the TLS handshake must succeed too (with the
// upstream's TLS identity); 'N' passes only when no TLS is configured.
func postgresProbe(env ProbeEnv) Probe {
	return func(ctx context.Context, addr string) error {
		c, err := env.Dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		if _, err := c.Write(sslRequest); err != nil {
			return fmt.Errorf("sending SSLRequest: %w", err)
		}
		var answer [1]byte
		if _, err := io.ReadFull(c, answer[:]); err != nil {
			return fmt.Errorf("reading the SSLRequest answer: %w", err)
		}
		switch {
		case answer[0] == 'S':
			return handshake(ctx, c, env.TLS, addr)
		case answer[0] == 'N' && env.TLS == nil:
			return nil
		case answer[0] == 'N':
			return errors.New("the server refused TLS")
		}
		return fmt.Errorf("answer %q to SSLRequest: not a PostgreSQL server", answer[0])
	}
}
