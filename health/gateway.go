package health

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
)

// Check is one readiness condition; it returns nil when satisfied, or an
// error whose text tells the operator what is missing.
type Check func() error

// Gateway answers /livez and /readyz for the drawbridge process itself.
// Liveness means the process serves HTTP at all; readiness means every
// registered check passes, so traffic may be sent.
type Gateway struct {
	mu     sync.Mutex // guards checks
	checks []namedCheck
}

type namedCheck struct {
	name  string
	check Check
}

// NewGateway returns a Gateway with no readiness checks: ready until some are added.
func NewGateway() *Gateway { return &Gateway{} }

// AddCheck registers a readiness condition under a name shown in /readyz.
func (g *Gateway) AddCheck(name string, c Check) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks = append(g.checks, namedCheck{name, c})
}

// RemoveCheck drops the readiness condition registered under name.
func (g *Gateway) RemoveCheck(name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks = slices.DeleteFunc(g.checks, func(c namedCheck) bool { return c.name == name })
}

// HasCheck reports whether a condition is registered under name.
func (g *Gateway) HasCheck(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.ContainsFunc(g.checks, func(c namedCheck) bool { return c.name == name })
}

// Report is the JSON body of /livez and /readyz.
type Report struct {
	Status string            `json:"status"`           // "ok" or "fail"
	Checks map[string]string `json:"checks,omitempty"` // name -> "ok" or the reason it failed
}

// Ready runs every check.
func (g *Gateway) Ready() (Report, bool) {
	g.mu.Lock()
	checks := append([]namedCheck(nil), g.checks...)
	g.mu.Unlock()
	rep := Report{Status: "ok", Checks: map[string]string{}}
	for _, c := range checks {
		if err := c.check(); err != nil {
			rep.Checks[c.name] = err.Error()
			rep.Status = "fail"
			continue
		}
		rep.Checks[c.name] = "ok"
	}
	return rep, rep.Status == "ok"
}

// LivezHandler answers 200 while the process can serve HTTP.
func (g *Gateway) LivezHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeReport(w, http.StatusOK, Report{Status: "ok"})
	})
}

// ReadyzHandler answers 200 when every check passes, else 503 with the reasons.
func (g *Gateway) ReadyzHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		rep, ok := g.Ready()
		status := http.StatusOK
		if !ok {
			status = http.StatusServiceUnavailable
		}
		writeReport(w, status, rep)
	})
}

func writeReport(w http.ResponseWriter, status int, rep Report) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(rep)
}
