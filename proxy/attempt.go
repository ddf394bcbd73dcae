package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/proxy/retry"
)

// The upstream's side of the retry loop (proxy/retry) and its attempt:
// the per-try timeout, the request the exchange lends, the client span and
// attempt metrics, the target's stats, and the body that ends it all.

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
	if u.perTry > 0 {
		ctx, cancel = context.WithCancelCause(ctx)
		timer = time.AfterFunc(u.perTry, func() { cancel(ErrTryTimeout) })
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
			err = fmt.Errorf("%w after %s: %w", ErrTryTimeout, u.perTry, err)
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

// attemptDone notes an attempt's outcome in the target's stats, then in
// its metrics and span. A 5xx or an error not caused by the client counts
// as a failure.
func (u *upstream) attemptDone(obs *attemptObs, target string, status int, took time.Duration, err error) {
	if st := u.statsFor(target); st != nil {
		switch {
		case err != nil && !classifyErr(err).clientCaused():
			st.fail(err.Error())
		case err == nil && status >= 500:
			st.fail("answered " + strconv.Itoa(status))
		case err == nil:
			st.consecutive.Store(0)
		}
	}
	obs.done(status, took, err)
}

// attemptObs follows one upstream attempt: its client span and metrics.
// A nil *attemptObs does nothing.
type attemptObs struct {
	m        *metrics
	span     trace.Span
	upstream string
	target   string
	n        int
	traceID  string
	body     cancelOnClose // the response body's wrapper, which ends the span
	carrier  injectCarrier // where inject writes the trace context
	// propagate: no client span (its server span is unsampled and so
	// would it be), but inject still writes the server span's context.
	propagate bool
}

// startAttempt opens the client span of attempt n to target under ctx and
// returns the context to send the attempt with. Call inject on the
// outgoing request, then done when the response head (or an error) is in,
// and end when the response body is closed.
func (u *upstream) startAttempt(ctx context.Context, req *http.Request, target string, n int, ex *exchange) (context.Context, *attemptObs) {
	if u.tracing == nil && u.metrics == nil {
		return ctx, nil
	}
	o := &attemptObs{m: u.metrics, upstream: u.name, target: target, n: n}
	if ex.sampled {
		o.traceID = ex.traceID
	}
	if t := u.tracing; t != nil && t.skipUnsampledChildren && ex.span != nil && !ex.span.IsRecording() {
		o.propagate = true // ctx carries the server span
		o.carrier.ex = ex
	} else if t != nil {
		host, port, _ := net.SplitHostPort(target)
		s := t.newStart()
		s.add(attribute.String("http.request.method", methodLabel(req.Method)))
		s.add(attribute.String("server.address", host))
		s.add(attribute.String("drawbridge.upstream", u.name))
		if p, err := strconv.Atoi(port); err == nil {
			s.add(attribute.Int("server.port", p))
		}
		if n > 1 {
			s.add(attribute.Int("http.request.resend_count", n-1))
		}
		ctx, o.span = t.start(ctx, req.Method, s, t.client, time.Time{})
		o.carrier.ex = ex
	}
	if u.metrics != nil && u.scheme == "https" {
		m, name := u.metrics, u.name
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			TLSHandshakeDone: func(cs tls.ConnectionState, err error) { m.tlsHandshake(name, cs, err) },
		})
	}
	return ctx, o
}

// inject writes the attempt's trace context into out's headers. The header
// map is shared by every attempt of the request, and a transport may still
// read a failed attempt's: a retry writes into a copy. The first attempt
// writes into the map itself, which no earlier attempt used.
func (u *upstream) inject(o *attemptObs, out *http.Request) {
	if o == nil || (o.span == nil && !o.propagate) {
		return
	}
	if o.n > 1 {
		out.Header = out.Header.Clone()
	}
	o.carrier.h = out.Header
	u.tracing.prop.Inject(out.Context(), &o.carrier)
}

// done records the attempt's outcome; on an error the span ends here.
func (o *attemptObs) done(status int, took time.Duration, err error) {
	if o == nil {
		return
	}
	o.m.attempt(o.upstream, o.target, status, took, err, o.traceID)
	switch {
	case o.span == nil:
	case err != nil:
		o.span.RecordError(err)
		o.span.SetStatus(codes.Error, errorKind(err))
		o.span.End()
	case o.span.IsRecording(): // SetAttributes's arguments escape, to a span that drops them
		o.span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 400 {
			o.span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
}

// end closes the span of an attempt that got a response, when its body is closed.
func (o *attemptObs) end() {
	if o != nil && o.span != nil {
		o.span.End()
	}
}
