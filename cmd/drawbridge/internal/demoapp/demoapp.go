package demoapp

import (
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed index.html
var indexHTML []byte

// Apps are the demo services: bound by Listen, serving after Serve.
type Apps struct {
	WebAddr, APIAddr string
	web, api         net.Listener
	servers          []*http.Server
}

// Service names, the last segment of the identities the demo gives them.
const (
	WebService = "demo-web"
	APIService = "demo-api"
)

// Listen binds the web and API services to 127.0.0.1 ports chosen by the
// kernel, so a configuration can name them before they serve.
func Listen(ctx context.Context) (*Apps, error) {
	var lc net.ListenConfig
	web, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting a demo service: %w", err)
	}
	api, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		web.Close()
		return nil, fmt.Errorf("starting a demo service: %w", err)
	}
	return &Apps{WebAddr: web.Addr().String(), APIAddr: api.Addr().String(), web: web, api: api}, nil
}

// Serve starts serving; tlsFor gives each service's TLS configuration by
// service name (nil tlsFor: plain HTTP).
func (a *Apps) Serve(tlsFor func(service string) (*tls.Config, error)) error {
	for _, s := range []struct {
		name string
		ln   net.Listener
		h    http.Handler
	}{{WebService, a.web, webHandler()}, {APIService, a.api, newAPI().handler()}} {
		ln := s.ln
		if tlsFor != nil {
			cfg, err := tlsFor(s.name)
			if err != nil {
				return fmt.Errorf("demo service %s: %w", s.name, err)
			}
			ln = tls.NewListener(ln, cfg)
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second,
			ErrorLog: log.New(io.Discard, "", 0)} // refused handshakes are the gateway's to report
		a.servers = append(a.servers, srv)
		go func() { _ = srv.Serve(ln) }()
	}
	return nil
}

// Close stops the services.
func (a *Apps) Close() {
	for _, s := range a.servers {
		_ = s.Close()
	}
	a.web.Close()
	a.api.Close()
}

func webHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(indexHTML)
	})
	return mux
}

type todo struct {
	ID    int    `json:"id"`
	Title string `json:"title"`
	Done  bool   `json:"done"`
}

type api struct {
	mu        sync.Mutex // guards todos, nextID and brokenTil
	todos     map[int]todo
	nextID    int
	brokenTil time.Time // until then every endpoint but /chaos answers 503

}

func newAPI() *api {
	a := &api{todos: map[int]todo{}, nextID: 1}
	for _, t := range []string{"Put the app behind drawbridge", "Turn on mutual TLS", "Watch the metrics"} {
		a.add(t)
	}
	return a
}

func (a *api) add(title string) todo {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := todo{ID: a.nextID, Title: title}
	a.todos[t.ID] = t
	a.nextID++
	return t
}

// broken reports whether a /chaos call has the API failing right now.
func (a *api) broken() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return time.Now().Before(a.brokenTil)
}

// handler serves the API. POST /chaos?seconds=N (default 15, at most 300)
// makes every other endpoint, /healthz included, answer 503 for N
// seconds: the gateway's health check, breaker and fallback take over, and
// traffic returns by itself afterwards.
func (a *api) handler() http.Handler {
	mux := a.routes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/chaos" && a.broken() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the demo API is broken on purpose (POST /chaos)"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *api) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /chaos", func(w http.ResponseWriter, r *http.Request) {
		secs, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || secs <= 0 {
			secs = 15
		}
		secs = min(secs, 300)
		a.mu.Lock()
		a.brokenTil = time.Now().Add(time.Duration(secs) * time.Second)
		a.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"broken_for_seconds": secs})
	})
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"message":    "hello from the demo API, through drawbridge",
			"request_id": r.Header.Get("X-Request-Id"),
			"forwarded":  r.Header.Get("X-Forwarded-For"),
			"time":       time.Now().UTC().Format(time.RFC3339),
		})
	})
	mux.HandleFunc("GET /todos", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		list := make([]todo, 0, len(a.todos))
		for _, t := range a.todos {
			list = append(list, t)
		}
		a.mu.Unlock()
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("POST /todos", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Title string `json:"title"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil || strings.TrimSpace(in.Title) == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `send {"title": "..."}`})
			return
		}
		writeJSON(w, http.StatusCreated, a.add(strings.TrimSpace(in.Title)))
	})
	mux.HandleFunc("DELETE /todos/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		a.mu.Lock()
		_, ok := a.todos[id]
		delete(a.todos, id)
		a.mu.Unlock()
		if err != nil || !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such todo"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for i := 0; i < 3600; i++ {
			if _, err := fmt.Fprintf(w, "data: {\"tick\": %d}\n\n", i); err != nil {
				return
			}
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
			}
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
