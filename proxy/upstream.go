package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/proxy/retry"
	"github.com/drawbridge-proxy/drawbridge/proxy/transport"
)

// upstream is the http.RoundTripper of every route that targets it: each
// RoundTrip picks a target, makes the attempt, and retries when that is safe.
type upstream struct {
	cfg       UpstreamConfig // as built; a reload keeps the upstream while this is unchanged
	name      string
	scheme    string
	pool      *balancer.Pool
	transport *http.Transport      // health checks, and attempts with http1: std
	native    *transport.Transport // attempts with http1: native; nil with std
	retries   RetryConfig
	loop      retry.Loop // picks targets, retries within the budget; Budget set by guard
	guards    *guards    // health, breakers, discovery (resilience.go)
	metrics   *metrics   // nil: no metrics
	tracing   *tracing   // nil: no spans
	stats     sync.Map   // target address -> *targetStats, for the status page

	weights atomic.Pointer[map[string]int]      // configured target -> weight (targets.go)
	sources atomic.Pointer[map[string][]string] // discovery: target -> its addresses

	loops struct {
		sync.Mutex // guards stop
		stop       func()
	}

	// For relayed (tcp, postgres) connections.
	protocol    string
	tlsConf     *tls.Config
	dialTimeout time.Duration
	tlsTimeout  time.Duration
}

func newUpstream(cfg UpstreamConfig, tlsConf *tls.Config) (*upstream, error) {
	targets := make([]*balancer.Target, len(cfg.Targets))
	for i, addr := range cfg.Targets {
		targets[i] = balancer.NewWeightedTarget(addr, cfg.weightOf(i))
	}
	pool, err := balancer.NewPool(cfg.Balance, targets)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", cfg.Name, err)
	}
	u := &upstream{
		name:      cfg.Name,
		scheme:    "http",
		pool:      pool,
		transport: newTransport(cfg, tlsConf),
		retries:   cfg.Retries,

		protocol:    cfg.Protocol,
		tlsConf:     tlsConf,
		dialTimeout: cfg.Timeouts.Dial,
		tlsTimeout:  cfg.Timeouts.TLSHandshake,
	}
	if cfg.Protocol == ProtocolHTTPS {
		u.scheme = "https"
	}
	u.loop = retry.Loop{Pool: pool, Do: u, Policy: retry.Policy{
		Attempts: cfg.Retries.Attempts, OnStatus: cfg.Retries.OnStatus,
		BackoffBase: cfg.Retries.BackoffBase, BackoffMax: cfg.Retries.BackoffMax,
	}}
	u.native = newNative(cfg, tlsConf)
	return u, nil
}

// newNative builds the native HTTP/1.1 client of cfg, or nil with std.
func newNative(cfg UpstreamConfig, tlsConf *tls.Config) *transport.Transport {
	if cfg.HTTP1 != HTTP1Native {
		return nil
	}
	if cfg.Protocol != ProtocolHTTPS {
		tlsConf = nil
	}
	return transport.New(transport.Config{
		DialTimeout: cfg.Timeouts.Dial, TLSHandshakeTimeout: cfg.Timeouts.TLSHandshake,
		ResponseHeaderTimeout: cfg.Timeouts.ResponseHeader, IdleConnTimeout: cfg.Timeouts.IdleConn,
		MaxIdlePerHost: cfg.MaxIdlePerTarget, ExpectContinueTimeout: time.Second, TLS: tlsConf,
		Interim: interimFor,
	})
}

// interimFor forwards a 1xx head the native transport read to the client
// of the request's exchange (forward.go).
func interimFor(req *http.Request, code int, h http.Header) {
	_ = exchangeFrom(req.Context()).interim(code, h)
}

// roundTripper is what an attempt goes through.
func (u *upstream) roundTripper() http.RoundTripper {
	if u.native != nil {
		return u.native
	}
	return u.transport
}

// newTransport builds a keep-alive pool tuned for a gateway: many idle
// connections per target (the stdlib default of 2 makes a busy proxy dial
// on nearly every request), bounded dial, handshake and header waits.
func newTransport(cfg UpstreamConfig, tlsConf *tls.Config) *http.Transport {
	dialer := &net.Dialer{Timeout: cfg.Timeouts.Dial, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   cfg.Timeouts.TLSHandshake,
		ResponseHeaderTimeout: cfg.Timeouts.ResponseHeader,
		IdleConnTimeout:       cfg.Timeouts.IdleConn,
		MaxIdleConns:          0, // bounded per host below
		MaxIdleConnsPerHost:   cfg.MaxIdlePerTarget,
		ExpectContinueTimeout: time.Second,
		// Compression is the client's and the upstream's business; a
		// gateway that asks for gzip and decodes it wastes CPU twice.
		DisableCompression: true,
		ForceAttemptHTTP2:  cfg.Protocol == ProtocolHTTPS,
	}
	if cfg.Protocol == ProtocolH2C {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
	}
	return t
}

// RoundTrip is the retry loop with the upstream's own breakers.
func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	return u.loop.RoundTrip(req, u.guards.breakers)
}

// Attempt is attempt for the retry loop.
func (u *upstream) Attempt(req *http.Request, t *balancer.Target, n int) (*http.Response, error) {
	return u.attempt(req, t, n, exchangeFrom(req.Context()))
}

// Sort classifies an attempt's or a dial's error for the retry loop.
func (u *upstream) Sort(ctx context.Context, err error) retry.Failure {
	f := classify(ctx, err)
	return retry.Failure{Kind: failures[f].kind, ClientCaused: f.clientCaused(), Connect: err != nil && isConnectFailure(err)}
}

// Note counts the retry loop's events.
func (u *upstream) Note(e retry.Event) {
	m := u.guards.metrics
	switch e {
	case retry.NoTarget:
		inc(m.noTarget, u.name)
	case retry.Exhausted:
		inc(m.exhausted, u.name)
	case retry.Retried:
		inc(m.retries, u.name)
	}
}

// attempt sends req to one target. The per-try timeout covers the wait
// for the response head only; the body streams for as long as it needs.
func (u *upstream) attempt(req *http.Request, target *balancer.Target, n int, ex *exchange) (*http.Response, error) {
	ctx, cancel := req.Context(), context.CancelCauseFunc(nil)
	var timer *time.Timer
	if u.retries.PerTryTimeout > 0 {
		ctx, cancel = context.WithCancelCause(ctx)
		timer = time.AfterFunc(u.retries.PerTryTimeout, func() { cancel(ErrTryTimeout) })
	}
	sendCtx, obs := u.startAttempt(ctx, req, target.Addr, n, ex)
	out := ex.attemptRequest(req, sendCtx, target.Addr)
	u.inject(obs, out)
	start := time.Now()
	end := target.Begin()
	resp, err := u.roundTripper().RoundTrip(out)
	took := time.Since(start)
	end(took)
	if timer != nil {
		timer.Stop()
	}
	if err != nil {
		err = blameClientBody(req, err)
		if cause := context.Cause(ctx); errors.Is(cause, ErrTryTimeout) {
			err = fmt.Errorf("%w after %s: %w", ErrTryTimeout, u.retries.PerTryTimeout, err)
		} else if req.Context().Err() != nil {
			err = fmt.Errorf("%w: %w", errClientGone, err)
		}
		if cancel != nil {
			cancel(nil)
		}
		ex.recordAttempt(target.Addr, 0, took, err)
		u.attemptDone(obs, target.Addr, 0, took, err)
		return nil, err
	}
	ex.recordAttempt(target.Addr, resp.StatusCode, took, nil)
	u.attemptDone(obs, target.Addr, resp.StatusCode, took, nil)
	releaseOnClose(resp, cancel, obs)
	return resp, nil
}

// releaseOnClose makes closing resp's body end the attempt: its context
// (which must outlive RoundTrip while the body streams) and its span. An
// upgraded body is the connection itself and stays a ReadWriteCloser.
func releaseOnClose(resp *http.Response, cancel context.CancelCauseFunc, obs *attemptObs) {
	if cancel == nil && obs == nil {
		return
	}
	rel := attemptEnd{cancel: cancel, obs: obs}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &cancelOnCloseRW{ReadWriteCloser: rwc, end: rel}
		return
	}
	b := &cancelOnClose{}
	if obs != nil {
		b = &obs.body // the observer is allocated anyway
	}
	b.ReadCloser, b.end = resp.Body, rel
	resp.Body = b
}

// attemptEnd is what closing an attempt's response body releases.
type attemptEnd struct {
	cancel context.CancelCauseFunc // nil without a per-try timeout
	obs    *attemptObs
}

func (e attemptEnd) release() {
	if e.cancel != nil {
		e.cancel(nil)
	}
	e.obs.end()
}

type cancelOnClose struct {
	io.ReadCloser
	end attemptEnd
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.end.release()
	return err
}

type cancelOnCloseRW struct {
	io.ReadWriteCloser
	end attemptEnd
}

func (c *cancelOnCloseRW) Close() error {
	err := c.ReadWriteCloser.Close()
	c.end.release()
	return err
}

// CloseWrite half-closes the upgraded connection when it can be.
func (c *cancelOnCloseRW) CloseWrite() error {
	if cw, ok := c.ReadWriteCloser.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// close releases idle upstream connections.
func (u *upstream) close() {
	u.transport.CloseIdleConnections()
	if u.native != nil {
		u.native.Close()
	}
}

// startLoops runs the upstream's health checks, outlier detection and
// service discovery under ctx until stopLoops.
func (u *upstream) startLoops(ctx context.Context) {
	u.loops.Lock()
	defer u.loops.Unlock()
	if u.loops.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { u.run(ctx); close(done) }()
	u.loops.stop = func() { cancel(); <-done }
}

// stopLoops stops what startLoops started and waits for it; idempotent.
func (u *upstream) stopLoops() {
	u.loops.Lock()
	stop := u.loops.stop
	u.loops.stop = func() {}
	u.loops.Unlock()
	if stop != nil {
		stop()
	}
}
