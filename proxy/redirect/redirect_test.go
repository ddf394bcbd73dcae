package redirect

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		name, host, target string
		port               int
		want               string
	}{
		{"default port", "example.com", "/a/b?x=1&y=2", 443, "https://example.com/a/b?x=1&y=2"},
		{"port dropped and mapped", "example.com:8080", "/", 8443, "https://example.com:8443/"},
		{"escaped path kept", "example.com", "/a%2Fb/c%20d", 443, "https://example.com/a%2Fb/c%20d"},
		{"ipv6", "[::1]:80", "/x", 443, "https://[::1]/x"},
		{"ipv6 with port", "[::1]:80", "/x", 8443, "https://[::1]:8443/x"},
		{"bad host", "evil.com/@x", "/", 443, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			r.Host = tc.host
			got, err := Config{Port: tc.port}.Target(r)
			if tc.want == "" {
				if err == nil {
					t.Errorf("Target = %q, want ErrBadHost", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Target = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	h := Config{Port: 443}.Handler(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) })
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "http://example.com/form?a=1", strings.NewReader("body"))
	h.ServeHTTP(w, r)
	if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != "https://example.com/form?a=1" {
		t.Errorf("got %d Location %q, want 308 to https://example.com/form?a=1", w.Code, w.Header().Get("Location"))
	}
	if err := (&Config{Port: 70000}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "port:") {
		t.Errorf("Validate = %v, want a port: problem", err)
	}
}
