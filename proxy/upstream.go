package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
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
	guards    *guards  // health, breakers, budget, discovery (resilience.go)
	metrics   *metrics // nil: no metrics
	tracing   *tracing // nil: no spans
	stats     sync.Map // target address -> *targetStats, for the status page

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

// RoundTrip is roundTrip with the upstream's own breakers.
func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	return u.roundTrip(req, u.guards.breakers)
}

// roundTrip makes up to retries.attempts attempts, each on a target picked
// by the balancer among those whose breaker (in brk) lets it through. A
// retry goes to a target not tried yet when there is one, and only while
// the retry budget lasts. With no target available it fails at once with
// ErrNoTarget, before any dial.
func (u *upstream) roundTrip(req *http.Request, brk *breaker.Set) (*http.Response, error) {
	ex := exchangeFrom(req.Context())
	if err := req.Context().Err(); err != nil {
		// Reset or gone before anything was sent (HTTP/2 rapid reset):
		// send nothing, and pick no target.
		return nil, fmt.Errorf("%w: %w", errClientGone, err)
	}
	var body *countingBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &countingBody{body: req.Body}
		req.Body = body
	}
	g := u.guards
	g.budget.request()
	target, done := u.pickTarget(brk, nil)
	if target == nil {
		inc(g.metrics.noTarget, u.name)
		return nil, ErrNoTarget
	}
	var triedBuf [4]*balancer.Target
	tried := triedBuf[:0]
	for attempt := 1; ; attempt++ {
		resp, err := u.attempt(req, target, ex)
		kind, status := outcome(req, resp, err)
		done.Report(kind, status)
		u.reportOutcome(target, kind, status)
		tried = append(tried, target)
		if !u.retryable(req, body, resp, err, attempt) {
			return resp, err
		}
		next, nextDone := u.pickTarget(brk, tried)
		if next == nil {
			return resp, err // nothing left to try: the honest answer is this one
		}
		if !g.budget.withdraw() {
			nextDone.Report(breaker.Canceled, 0)
			inc(g.metrics.exhausted, u.name)
			return resp, err
		}
		inc(g.metrics.retries, u.name)
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := u.backoff(req.Context(), attempt); err != nil {
			nextDone.Report(breaker.Canceled, 0)
			return nil, errClientGone
		}
		target, done = next, nextDone
	}
}

// pick is pickTarget with the breaker's report as a func, for relayed
// connections (tcp_upstream.go), where one allocation per connection is
// nothing.
func (u *upstream) pick(brk *breaker.Set, tried []*balancer.Target) (*balancer.Target, func(breaker.Kind, int)) {
	t, done := u.pickTarget(brk, tried)
	if t == nil {
		return nil, nil
	}
	return t, done.Report
}

// pickTarget returns an available target that brk lets through, preferring
// one not in tried, and what the attempt reports its end to; nil when
// there is none. A breaker that refuses (half-open with its trial attempts
// taken) leaves its target out and the next one is asked.
func (u *upstream) pickTarget(brk *breaker.Set, tried []*balancer.Target) (*balancer.Target, breaker.Done) {
	var refused []*balancer.Target
	for {
		keep := func(t *balancer.Target) bool {
			return !slices.Contains(refused, t) && !slices.Contains(tried, t) && brk.Admits(t.Addr)
		}
		t := u.pool.PickWhere(keep)
		if t == nil && len(tried) > 0 {
			// Only tried targets remain: retry on one of them.
			t = u.pool.PickWhere(func(t *balancer.Target) bool { return !slices.Contains(refused, t) && brk.Admits(t.Addr) })
		}
		if t == nil {
			return nil, breaker.Done{}
		}
		done, err := brk.For(t).Allow()
		if err == nil {
			return t, done
		}
		refused = append(refused, t)
	}
}

// attempt sends req to one target. The per-try timeout covers the wait
// for the response head only; the body streams for as long as it needs.
func (u *upstream) attempt(req *http.Request, target *balancer.Target, ex *exchange) (*http.Response, error) {
	ctx, cancel := req.Context(), context.CancelCauseFunc(nil)
	var timer *time.Timer
	if u.retries.PerTryTimeout > 0 {
		ctx, cancel = context.WithCancelCause(ctx)
		timer = time.AfterFunc(u.retries.PerTryTimeout, func() { cancel(ErrTryTimeout) })
	}
	n, _, _, _, _ := ex.snapshot()
	sendCtx, obs := u.startAttempt(ctx, req, target.Addr, n+1, ex)
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

// retryable decides whether a failed attempt may be tried again: never
// after the client left; always when the connection failed before any of
// the request body was read; otherwise only for idempotent methods without
// a body, on errors or on the statuses listed in retries.on_status.
func (u *upstream) retryable(req *http.Request, body *countingBody, resp *http.Response, err error, attempt int) bool {
	if attempt >= u.retries.Attempts || req.Context().Err() != nil {
		return false
	}
	bodyUntouched := body == nil || !body.touched.Load()
	if err != nil {
		if classify(req.Context(), err).clientCaused() {
			return false
		}
		if isConnectFailure(err) && bodyUntouched {
			return true
		}
		return idempotent(req.Method) && body == nil
	}
	return idempotent(req.Method) && body == nil && slices.Contains(u.retries.OnStatus, resp.StatusCode)
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// backoff waits base*2^(attempt-1), capped, with full jitter (AWS
// architecture blog, "Exponential Backoff and Jitter").
func (u *upstream) backoff(ctx context.Context, attempt int) error {
	ceiling := u.retries.BackoffBase << (attempt - 1)
	if ceiling > u.retries.BackoffMax || ceiling <= 0 {
		ceiling = u.retries.BackoffMax
	}
	wait := time.Duration(rand.Int64N(int64(ceiling) + 1)) //nolint:gosec // G404: jitter, not a secret
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
