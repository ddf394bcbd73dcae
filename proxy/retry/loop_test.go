package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drawbridge-proxy/drawbridge/proxy/balancer"
	"github.com/drawbridge-proxy/drawbridge/proxy/breaker"
)

var errRefused = errors.New("connection refused")

// fake answers every attempt with the next of its results and sorts
// errRefused as a connect failure.
type fake struct {
	results []error // nil: a 502 response
	read    bool    // each attempt reads the request body
	tried   []string
	notes   []Event
}

func (f *fake) Attempt(req *http.Request, t *balancer.Target, n int) (*http.Response, error) {
	f.tried = append(f.tried, t.Addr)
	if f.read && req.Body != nil {
		_, _ = io.ReadAll(req.Body)
	}
	err := f.results[n-1]
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: http.StatusBadGateway, Body: http.NoBody}, nil
}

func (f *fake) Sort(_ context.Context, err error) Failure {
	if err == nil {
		return Failure{Kind: breaker.Response}
	}
	return Failure{Kind: breaker.Connect, Connect: errors.Is(err, errRefused)}
}

func (f *fake) Report(*balancer.Target, breaker.Kind, int) {}
func (f *fake) Note(e Event)                               { f.notes = append(f.notes, e) }

func newLoop(t *testing.T, f *fake, addrs ...string) *Loop {
	t.Helper()
	var ts []*balancer.Target
	for _, a := range addrs {
		ts = append(ts, balancer.NewTarget(a))
	}
	pool, err := balancer.NewPool(balancer.RoundRobin, ts)
	if err != nil {
		t.Fatal(err)
	}
	return &Loop{Pool: pool, Do: f, Budget: NewBudget(0.2, 100, 10*time.Second, nil),
		Policy: Policy{Attempts: 3, OnStatus: []int{502}, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}}
}

func TestRoundTripRetries(t *testing.T) {
	other := errors.New("reset")
	tests := []struct {
		name    string
		method  string
		body    string
		read    bool
		results []error
		want    int // attempts made
	}{
		{"GET retried on a listed status, on a new target", http.MethodGet, "", false, []error{nil, nil, nil}, 3},
		{"GET retried on an error", http.MethodGet, "", false, []error{other, other, other}, 3},
		{"POST with a body not retried on a status", http.MethodPost, "x", false, []error{nil, nil, nil}, 1},
		{"POST with an unread body retried on a connect failure", http.MethodPost, "x", false, []error{errRefused, errRefused, nil}, 3},
		{"POST whose body was read not retried", http.MethodPost, "x", true, []error{errRefused, nil, nil}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{results: tc.results, read: tc.read}
			l := newLoop(t, f, "a:1", "b:1", "c:1")
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, "http://x/", body)
			resp, _ := l.RoundTrip(req, nil)
			if resp != nil {
				resp.Body.Close()
			}
			if len(f.tried) != tc.want {
				t.Fatalf("got %d attempts (%v), want %d", len(f.tried), f.tried, tc.want)
			}
			if tc.want == 3 && (f.tried[0] == f.tried[1] || f.tried[1] == f.tried[2] || f.tried[0] == f.tried[2]) {
				t.Errorf("retries went to a target already tried: %v", f.tried)
			}
		})
	}
}

func TestRoundTripNoTarget(t *testing.T) {
	f := &fake{}
	l := newLoop(t, f, "a:1")
	l.Pool.Targets()[0].SetHealthy(false)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://x/", nil)
	if _, err := l.RoundTrip(req, nil); !errors.Is(err, ErrNoTarget) {
		t.Fatalf("got %v, want ErrNoTarget", err)
	}
	if len(f.tried) != 0 || len(f.notes) != 1 || f.notes[0] != NoTarget {
		t.Errorf("got attempts %v and events %v, want none and [NoTarget]", f.tried, f.notes)
	}
}

func TestDialMovesOnAfterConnectFailures(t *testing.T) {
	f := &fake{}
	l := newLoop(t, f, "a:1", "b:1", "c:1")
	var dialled []string
	dial := func(_ context.Context, addr string) (net.Conn, error) {
		dialled = append(dialled, addr)
		if len(dialled) < 3 {
			return nil, errRefused
		}
		c, _ := net.Pipe()
		return c, nil
	}
	conn, addr, err := l.Dial(t.Context(), nil, dial)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if len(dialled) != 3 || addr != dialled[2] {
		t.Errorf("dialled %v and connected to %s, want three targets and the last", dialled, addr)
	}
	if want := []Event{Retried, Retried}; len(f.notes) != 2 || f.notes[0] != want[0] || f.notes[1] != want[1] {
		t.Errorf("got events %v, want %v", f.notes, want)
	}
}
