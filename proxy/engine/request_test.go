package engine

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// plainTargets are origin-form targets for the fast path: some it takes,
// some it leaves to url.ParseRequestURI.
var plainTargets = []string{
	"/", "/a", "/hello/world", "//x", "///y", "/a?", "/a??", "/a?b?", "/a?b=c&d=e", "/a?b=%zz",
	"/a/./b/../c", "/a%20b", "/a%2fb", "/a%zz", "/a b", "/a!b", "/a*b", "/a'b", "/a(b)", "/a:b@c;d=e,f+g$h&i",
	"/~user/_x-y.z", "/é", "/a?é", "/a?\x01", "/a\x7f", "/a#frag", "/a?q#frag", "/a[b]", "/a|b", "/a\\b",
}

// The fast path must give exactly what url.ParseRequestURI gives, for every
// target it takes.
func TestParsePlainOriginMatchesStd(t *testing.T) {
	targets := append([]string(nil), plainTargets...)
	for c := 0; c < 256; c++ {
		targets = append(targets, "/p"+string(rune(c))+"q", "/p?"+string([]byte{byte(c)}), "/p"+string([]byte{byte(c)}))
	}
	taken := 0
	for _, target := range targets {
		if checkPlainOrigin(t, target) {
			taken++
		}
	}
	if taken < 100 {
		t.Errorf("the fast path took %d targets, want most plain ones", taken)
	}
}

func checkPlainOrigin(t *testing.T, target string) bool {
	t.Helper()
	var got url.URL
	if !parsePlainOrigin(target, &got) {
		return false
	}
	want, err := url.ParseRequestURI(target)
	if err != nil {
		t.Errorf("parsePlainOrigin took %q, which url.ParseRequestURI refuses: %v", target, err)
		return true
	}
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("parsePlainOrigin(%q) = %#v, want %#v", target, got, *want)
	}
	return true
}

func FuzzParsePlainOrigin(f *testing.F) {
	for _, s := range plainTargets {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) { checkPlainOrigin(t, target) })
}

// Keep-alive requests share the connection's request, header map, values
// and context: each must still see only its own fields, and the context
// must stay live across requests and end when the connection parks.
func TestReusedRequestStateIsPerRequest(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var ctxs []context.Context
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.URL.Path+" "+r.URL.RawQuery+" a="+strings.Join(r.Header["X-A"], ",")+
			" b="+strings.Join(r.Header["X-B"], ",")+" h="+r.Header.Get("X-Handler"))
		if err := r.Context().Err(); err != nil {
			t.Errorf("%s: the request's context ended while it was served: %v", r.URL.Path, err)
		}
		ctxs = append(ctxs, r.Context())
		r.Header.Set("X-Handler", "leftover") // must not reach the next request
		_, _ = io.WriteString(w, "ok")
	})
	srv, addr := start(t, Config{Handler: h}, nil)
	cl := dial(t, addr, nil)
	cl.send("GET /1?q=1 HTTP/1.1\r\nHost: a\r\nX-A: one\r\nX-A: two\r\nX-B: b\r\n\r\n" +
		"GET /2 HTTP/1.1\r\nHost: a\r\nX-A: three\r\n\r\n")
	cl.expect("ok")
	cl.expect("ok")
	waitFor(t, func() bool { return srv.parked() == 1 })
	cl.send("GET /3%20x?z HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	cl.expect("ok")
	cl.expectClosed(3 * time.Second)
	want := []string{"/1 q=1 a=one,two b=b h=", "/2  a=three b= h=", "/3 x z a= b= h="}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("handler saw %q, want %q", got, want)
	}
	if len(ctxs) != 3 {
		t.Fatalf("%d requests served, want 3", len(ctxs))
	}
	if ctxs[0] != ctxs[1] {
		t.Error("two requests of one busy spell got different contexts, want the connection's one")
	}
	if ctxs[0].Err() == nil {
		t.Error("the context of the requests before the park is still live")
	}
	waitFor(t, func() bool { return ctxs[2].Err() != nil })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
