//go:build !race

// The race detector changes allocation counts (sync.Pool drops items at
// random under it), so these run without -race; .ci/test runs them so.

package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/drawbridge-proxy/drawbridge/internal/drawtest"
	"github.com/drawbridge-proxy/drawbridge/proxy"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
)

// Allocations of one simple keep-alive GET through the native engine, the
// forwarder and the native transport (no metrics or tracing), measured
// over real sockets: pinned where they are, so lower them when you cut
// one; a change that raises them needs a reason. Where the 4 are
// (go test -run TestAllocsPerProxiedGET -memprofile m.out -memprofilerate 1):
//
//	engine     1  string(head) (the request, its URL, header map, values
//	              and context are the connection's, reused)
//	transport  2  string(head), the header's values (the engine's response
//	              shares them until it is written, after the handler); the
//	              response and its header map are the connection's, reused,
//	              and the cancellation hook is the engine context's
//	              (transport.CancelHooks), not an AfterFunc
//	proxy      1  the exchange (the breaker's Done is a value)
//	access log 0  drawbridge run's JSON logger: the line is appended
//	              straight into a pooled buffer in the JSON handler's
//	              format (telemetry.JSONLines) and written to the log's
//	              buffer; through any other slog handler 6 more (the
//	              attrs, their collector, the record's overflow slice,
//	              json.Marshal's float, context.WithoutCancel, ...)
const (
	maxAllocsPerGET              = 4
	maxAllocsPerGETAccessLog     = 4
	maxAllocsPerGETAccessLogSlog = 10
)

// The same GET behind the gateways of .ci/bench-http (featuresGateway), on
// top of the 4 above: both add metrics and the golden-signal observer (2
// allocations); "on" adds an access log at info, every line written (nothing
// allocated, as access_log_on above) and tracing sampled out. Telemetry's provider says its
// sampler reads no start attributes, so a sampled-out span has none:
//
//	server span  3  its context (Start's WithValue), the non-recording
//	                span, the timestamp option
//	             1  the request bound to the span's context
//	client span  0  none under an unsampled server span: telemetry's
//	                provider says its child would be unsampled too, and
//	                the upstream gets the server span's context
//	traceparent  1  the header value
const (
	maxAllocsPerGETFeaturesOff = 6
	maxAllocsPerGETFeaturesOn  = 11
)

// TestAllocsPerProxiedGET counts the heap allocations of one proxied GET:
// a raw-socket client and a raw-socket upstream that allocate nothing per
// request, so every allocation counted is the gateway's.
func TestAllocsPerProxiedGET(t *testing.T) {
	if os.Getenv("DRAWBRIDGE_HTTP1") == proxy.HTTP1Std {
		t.Skip("pins the native engine and transport; net/http's allocate several times more")
	}
	// drawbridge run's logger: JSON, whose access lines are written
	// directly (telemetry.JSONLines).
	gatewayLog, _, err := telemetry.NewLogger(telemetry.LogConfig{Format: telemetry.FormatJSON}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		access bool
		log    *slog.Logger
		max    float64
	}{
		{"access_log_off", false, gatewayLog, maxAllocsPerGET},
		{"access_log_on", true, gatewayLog, maxAllocsPerGETAccessLog},
		{"access_log_on_slog", true, slog.New(slog.NewJSONHandler(io.Discard, nil)), maxAllocsPerGETAccessLogSlog},
	} {
		access := tc.access
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneRoute(cannedUpstream(t))
			cfg.AccessLog.Disabled = !access
			l := cfg.Listeners["edge"]
			l.Address = "127.0.0.1:0"
			cfg.Listeners["edge"] = l
			srv, err := proxy.New(cfg, proxy.Deps{Logger: tc.log})
			if err != nil {
				t.Fatal(err)
			}
			startServer(t, srv)
			c := dialRaw(t, srv.Addr("edge").String())
			for range 100 { // warm the pools and the upstream connection
				c.get(t)
			}
			got := testing.AllocsPerRun(2000, func() { c.get(t) })
			t.Logf("%.1f allocations per proxied GET", got)
			if got > tc.max {
				t.Errorf("a proxied GET allocates %.1f times, want <= %.0f", got, tc.max)
			}
		})
	}
}

// TestAllocsPerProxiedGETFeatures pins the allocations of the features
// .ci/bench-http turns on: an access log the level keeps quiet, and
// tracing with every trace sampled out.
func TestAllocsPerProxiedGETFeatures(t *testing.T) {
	if os.Getenv("DRAWBRIDGE_HTTP1") == proxy.HTTP1Std {
		t.Skip("pins the native engine and transport; net/http's allocate several times more")
	}
	upstream := cannedUpstream(t)
	for _, tc := range []struct {
		name string
		on   bool
		max  float64
	}{
		{"off", false, maxAllocsPerGETFeaturesOff},
		{"on", true, maxAllocsPerGETFeaturesOn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, featuresGateway(t, upstream, tc.on))
			for range 100 {
				c.get(t)
			}
			got := testing.AllocsPerRun(2000, func() { c.get(t) })
			t.Logf("%.1f allocations per proxied GET", got)
			if got > tc.max {
				t.Errorf("a proxied GET allocates %.1f times, want <= %.0f", got, tc.max)
			}
		})
	}
}

func startServer(t testing.TB, srv *proxy.Server) {
	t.Helper()
	if err := srv.Bind(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

var rawResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n" +
	"0123456789012345678901234567890123456789012345678901234567890123")

// cannedUpstream answers every request head with the same 64 B response.
func cannedUpstream(t testing.TB) string {
	t.Helper()
	return drawtest.ServeTCP(t, serveCanned)
}

func serveCanned(c net.Conn) {
	buf := make([]byte, 16<<10)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			if _, err := c.Write(rawResponse); err != nil {
				return
			}
			n = copy(buf, buf[end+4:n])
		}
	}
}

// rawClient sends a fixed GET and reads a Content-Length response into a
// fixed buffer.
type rawClient struct {
	c   net.Conn
	buf []byte
}

var rawRequest = []byte("GET /hello HTTP/1.1\r\nHost: example.test\r\nUser-Agent: raw\r\nAccept: */*\r\n\r\n")

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{c: c, buf: make([]byte, 16<<10)}
}

var errRawResponse = errors.New("unexpected response")

func (r *rawClient) get(t testing.TB) {
	if _, err := r.c.Write(rawRequest); err != nil {
		t.Fatal(err)
	}
	if err := r.read(); err != nil {
		t.Fatal(err)
	}
}

func (r *rawClient) read() error {
	n := 0
	for {
		m, err := r.c.Read(r.buf[n:])
		if err != nil {
			return err
		}
		n += m
		end := bytes.Index(r.buf[:n], []byte("\r\n\r\n"))
		if end < 0 {
			continue
		}
		if !bytes.HasPrefix(r.buf, []byte("HTTP/1.1 200 ")) {
			return errRawResponse
		}
		i := bytes.Index(r.buf[:end], []byte("\r\nContent-Length: "))
		if i < 0 {
			return errRawResponse
		}
		i += len("\r\nContent-Length: ")
		j := bytes.IndexByte(r.buf[i:end+2], '\r')
		length, err := strconv.Atoi(string(r.buf[i : i+j]))
		if err != nil {
			return err
		}
		for n < end+4+length {
			m, err := r.c.Read(r.buf[n:])
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	}
}
