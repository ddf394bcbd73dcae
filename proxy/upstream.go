package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
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
// RoundTrip picks a target, makes the attempt, and retries when that is safe
// (attempt.go, through proxy/retry).
type upstream struct {
	cfg       UpstreamConfig // as built; a reload keeps the upstream while this is unchanged
	name      string
	scheme    string
	pool      *balancer.Pool
	transport *http.Transport      // health checks, and attempts with http1: std
	native    *transport.Transport // attempts with http1: native; nil with std
	perTry    time.Duration        // retries.per_try_timeout; the rest of retries is the loop's Policy
	loop      retry.Loop           // picks targets, retries within the budget; Budget set by guard
	guards    *guards              // health, breakers, discovery (resilience.go)
	metrics   *metrics             // nil: no metrics
	tracing   *tracing             // nil: no spans
	stats     sync.Map             // target address -> *targetStats, for the status page

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
		perTry:    cfg.Retries.PerTryTimeout,

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
