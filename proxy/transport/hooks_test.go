package transport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hooksCtx is a CancelHooks context, as the native engine's is, that
// counts what the transport registers.
type hooksCtx struct {
	context.Context
	adds, removes atomic.Int32

	mu    sync.Mutex // guards the following fields
	next  uint64
	stops map[uint64]func() bool
}

func newHooksCtx(parent context.Context) *hooksCtx {
	return &hooksCtx{Context: parent, stops: map[uint64]func() bool{}}
}

func (h *hooksCtx) AddCancelHook(f func()) uint64 {
	h.adds.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	h.stops[h.next] = context.AfterFunc(h.Context, f)
	return h.next
}

func (h *hooksCtx) RemoveCancelHook(token uint64) bool {
	h.removes.Add(1)
	h.mu.Lock()
	stop := h.stops[token]
	delete(h.stops, token)
	h.mu.Unlock()
	return stop != nil && stop()
}

func (h *hooksCtx) Value(key any) any {
	if _, ok := key.(interface{ WantsCancelHooks() }); ok {
		return h
	}
	return h.Context.Value(key)
}

type valueKey struct{}

// The transport watches a request through its context's hooks, found
// under value contexts too, and removes the hook when the exchange ends;
// a context with a cancellation of its own in between is watched with
// AfterFunc. Either way a context that ends wakes an exchange blocked on
// the upstream.
func TestCancelThroughHooks(t *testing.T) {
	addr, _ := cannedResponses(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	silent := silentUpstream(t)
	tr := New(Config{})
	defer tr.Close()
	for _, tc := range []struct {
		name  string
		wrap  func(context.Context) (context.Context, context.CancelFunc)
		hooks bool
	}{
		{"the context", func(ctx context.Context) (context.Context, context.CancelFunc) { return ctx, func() {} }, true},
		{"under a value", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithValue(ctx, valueKey{}, 1), func() {}
		}, true},
		{"under a cancel", context.WithCancel, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, cancel := context.WithCancel(context.Background())
			defer cancel()
			h := newHooksCtx(base)
			ctx, stop := tc.wrap(h)
			defer stop()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := int32(0)
			if tc.hooks {
				want = 1
			}
			if a, r := h.adds.Load(), h.removes.Load(); a != want || r != want {
				t.Errorf("hooks added %d, removed %d; want %d and %d", a, r, want, want)
			}
			req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+silent+"/", nil)
			time.AfterFunc(50*time.Millisecond, cancel)
			_, err = tr.RoundTrip(req)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("RoundTrip on a context that ended: %v, want context.Canceled", err)
			}
		})
	}
}

// silentUpstream accepts connections and never answers.
func silentUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}
