package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
)

// Sentinel errors of the loop; the proxy's classifier knows them.
var (
	// ErrNoTarget means every target of the upstream is unhealthy, ejected
	// or behind an open breaker: the request is answered at once.
	ErrNoTarget = errors.New("no available target")
	// ErrClientGone marks a request the client abandoned; nothing is
	// written back and it is not the upstream's fault.
	ErrClientGone = errors.New("client closed the request")
)

// Policy is what an upstream's retries obey (its retries configuration).
type Policy struct {
	Attempts    int   // attempts per request, the first included; at least 1
	OnStatus    []int // statuses retried for idempotent requests without a body
	BackoffBase time.Duration
	BackoffMax  time.Duration
}

// Failure is how the caller's classifier sorts an attempt's error.
type Failure struct {
	Kind         breaker.Kind // what breakers and outlier detection see
	ClientCaused bool         // the client's doing: never retried
	Connect      bool         // no byte of the request reached the target
}

// Event is a countable step of the loop, for the caller's metrics.
type Event int

const (
	NoTarget  Event = iota // no target could take the request
	Exhausted              // a retry refused by the budget
	Retried                // an attempt that is a retry
)

// Attempter is the caller's side of the loop. Its methods are called on
// the request's goroutine; none may retain req.
type Attempter interface {
	// Attempt sends req to t, as attempt n (from 1) of the request.
	Attempt(req *http.Request, t *balancer.Target, n int) (*http.Response, error)
	// Sort classifies err, the result of an attempt or a dial under ctx;
	// nil err is a response.
	Sort(ctx context.Context, err error) Failure
	// Report tells outlier detection how an attempt on t ended.
	Report(t *balancer.Target, kind breaker.Kind, status int)
	// Note counts e.
	Note(e Event)
}

// Loop is one upstream's retry loop.
type Loop struct {
	Pool   *balancer.Pool
	Policy Policy
	Budget *Budget
	Do     Attempter
}

// RoundTrip makes up to Policy.Attempts attempts, each on a target picked
// by the balancer among those whose breaker (in brk) lets it through. A
// retry goes to a target not tried yet when there is one, and only while
// the retry budget lasts. With no target available it fails at once with
// ErrNoTarget, before any dial.
func (l *Loop) RoundTrip(req *http.Request, brk *breaker.Set) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		// Reset or gone before anything was sent (HTTP/2 rapid reset):
		// send nothing, and pick no target.
		return nil, fmt.Errorf("%w: %w", ErrClientGone, err)
	}
	var body *Body
	if req.Body != nil && req.Body != http.NoBody {
		body = &Body{body: req.Body}
		req.Body = body
	}
	l.Budget.Request()
	target, done := l.pickTarget(brk, nil)
	if target == nil {
		l.Do.Note(NoTarget)
		return nil, ErrNoTarget
	}
	var triedBuf [4]*balancer.Target
	tried := triedBuf[:0]
	for attempt := 1; ; attempt++ {
		resp, err := l.Do.Attempt(req, target, attempt)
		kind, status, retry := l.judge(req, body, resp, err, attempt)
		done.Report(kind, status)
		l.Do.Report(target, kind, status)
		tried = append(tried, target)
		if !retry {
			return resp, err
		}
		next, nextDone := l.pickTarget(brk, tried)
		if next == nil {
			return resp, err // nothing left to try: the honest answer is this one
		}
		if !l.Budget.Withdraw() {
			nextDone.Report(breaker.Canceled, 0)
			l.Do.Note(Exhausted)
			return resp, err
		}
		l.Do.Note(Retried)
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := l.backoff(req.Context(), attempt); err != nil {
			nextDone.Report(breaker.Canceled, 0)
			return nil, ErrClientGone
		}
		target, done = next, nextDone
	}
}

// judge sorts an attempt's result for breakers and outlier detection, and
// decides whether it may be tried again: never after the client left;
// always when the connection failed before any of the request body was
// read; otherwise only for idempotent methods without a body, on errors
// or on the statuses listed in Policy.OnStatus.
func (l *Loop) judge(req *http.Request, body *Body, resp *http.Response, err error, attempt int) (breaker.Kind, int, bool) {
	more := attempt < l.Policy.Attempts && req.Context().Err() == nil
	plain := idempotent(req.Method) && body == nil
	if err == nil {
		return breaker.Response, resp.StatusCode, more && plain && slices.Contains(l.Policy.OnStatus, resp.StatusCode)
	}
	f := l.Do.Sort(req.Context(), err)
	switch {
	case !more || f.ClientCaused:
		return f.Kind, 0, false
	case f.Connect && (body == nil || !body.touched.Load()):
		return f.Kind, 0, true
	}
	return f.Kind, 0, plain
}

// Dial connects to a target for a relayed connection: connect failures
// move on to another target, up to Policy.Attempts and within the retry
// budget. Targets are picked, and dials reported, like HTTP attempts. It
// returns the connection and the target's address.
func (l *Loop) Dial(ctx context.Context, brk *breaker.Set, dial func(ctx context.Context, addr string) (net.Conn, error)) (net.Conn, string, error) {
	var last error
	l.Budget.Request()
	var triedBuf [4]*balancer.Target
	tried := triedBuf[:0]
	for attempt := 1; attempt <= l.Policy.Attempts; attempt++ {
		if attempt > 1 && !l.Budget.Withdraw() {
			l.Do.Note(Exhausted)
			break
		}
		target, done := l.pickTarget(brk, tried)
		if target == nil {
			if last != nil {
				break
			}
			l.Do.Note(NoTarget)
			return nil, "", ErrNoTarget
		}
		if attempt > 1 {
			l.Do.Note(Retried)
		}
		start := time.Now()
		end := target.Begin()
		conn, err := dial(ctx, target.Addr)
		end(time.Since(start))
		f := l.Do.Sort(ctx, err)
		done.Report(f.Kind, 0)
		l.Do.Report(target, f.Kind, 0)
		if err == nil {
			return conn, target.Addr, nil
		}
		last = fmt.Errorf("%s: %w", target.Addr, err)
		if !f.Connect || ctx.Err() != nil {
			break
		}
		tried = append(tried, target)
	}
	return nil, "", last
}

// pickTarget returns an available target that brk lets through, preferring
// one not in tried, and what the attempt reports its end to; nil when
// there is none. A breaker that refuses (half-open with its trial attempts
// taken) leaves its target out and the next one is asked.
func (l *Loop) pickTarget(brk *breaker.Set, tried []*balancer.Target) (*balancer.Target, breaker.Done) {
	var refused []*balancer.Target
	for {
		keep := func(t *balancer.Target) bool {
			return !slices.Contains(refused, t) && !slices.Contains(tried, t) && brk.Admits(t.Addr)
		}
		t := l.Pool.PickWhere(keep)
		if t == nil && len(tried) > 0 {
			// Only tried targets remain: retry on one of them.
			t = l.Pool.PickWhere(func(t *balancer.Target) bool { return !slices.Contains(refused, t) && brk.Admits(t.Addr) })
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

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// backoff waits base*2^(attempt-1), capped, with full jitter (AWS
// architecture blog, "Exponential Backoff and Jitter").
func (l *Loop) backoff(ctx context.Context, attempt int) error {
	ceiling := l.Policy.BackoffBase << (attempt - 1)
	if ceiling > l.Policy.BackoffMax || ceiling <= 0 {
		ceiling = l.Policy.BackoffMax
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

// Body is a request body the loop watches: whether any of it was read
// decides whether a failed attempt may be retried. The transport reads it
// from its own goroutine, hence the atomics.
type Body struct {
	body    io.Reader
	touched atomic.Bool
	failed  atomic.Pointer[error] // the first read error other than EOF: the client's
}

func (b *Body) Read(p []byte) (int, error) {
	b.touched.Store(true)
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
		b.failed.CompareAndSwap(nil, &err)
	}
	return n, err
}

// Failure is the error reading the client's body gave, or nil.
func (b *Body) Failure() error {
	if e := b.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// Close is a no-op: the transport closes the body after each attempt, and a
// retry needs it open. The server closes the real body when the handler returns.
func (b *Body) Close() error { return nil }
