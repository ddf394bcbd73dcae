package http1

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type respView struct {
	Minor, Status int
	Reason        string
	ContentLength int64
	Chunked       bool
	Close         bool
	Fields        []string
}

func viewResponse(r *Response) respView {
	v := respView{Minor: r.Minor, Status: r.Status, Reason: string(r.Reason), ContentLength: r.ContentLength,
		Chunked: r.Chunked, Close: r.Close}
	for _, f := range r.Fields {
		v.Fields = append(v.Fields, string(f.Name)+": "+string(f.Value))
	}
	return v
}

func TestParseResponseAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want respView
	}{
		{"200 with a length", head("HTTP/1.1 200 OK", "Content-Length: 5"),
			respView{Minor: 1, Status: 200, Reason: "OK", ContentLength: 5, Fields: []string{"Content-Length: 5"}}},
		{"missing reason phrase", head("HTTP/1.1 204"), respView{Minor: 1, Status: 204, ContentLength: -1}},
		{"empty reason phrase", head("HTTP/1.1 304 ", "ETag: \"x\""),
			respView{Minor: 1, Status: 304, ContentLength: -1, Fields: []string{"ETag: \"x\""}}},
		{"reason with spaces and obs-text", head("HTTP/1.1 404 Not \xe9 Found", "Content-Length: 0"),
			respView{Minor: 1, Status: 404, Reason: "Not \xe9 Found", ContentLength: 0, Fields: []string{"Content-Length: 0"}}},
		{"100 Continue", head("HTTP/1.1 100 Continue"), respView{Minor: 1, Status: 100, Reason: "Continue", ContentLength: -1}},
		{"101 Switching Protocols", head("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"),
			respView{Minor: 1, Status: 101, Reason: "Switching Protocols", ContentLength: -1,
				Fields: []string{"Upgrade: websocket", "Connection: Upgrade"}}},
		{"103 Early Hints", head("HTTP/1.1 103 Early Hints", "Link: </a.css>; rel=preload"),
			respView{Minor: 1, Status: 103, Reason: "Early Hints", ContentLength: -1, Fields: []string{"Link: </a.css>; rel=preload"}}},
		{"chunked", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
			respView{Minor: 1, Status: 200, Reason: "OK", ContentLength: -1, Chunked: true, Fields: []string{"Transfer-Encoding: chunked"}}},
		{"body delimited by the close", head("HTTP/1.1 200 OK", "Content-Type: text/plain"),
			respView{Minor: 1, Status: 200, Reason: "OK", ContentLength: -1, Close: true, Fields: []string{"Content-Type: text/plain"}}},
		{"Connection close", head("HTTP/1.1 200 OK", "Connection: close", "Content-Length: 0"),
			respView{Minor: 1, Status: 200, Reason: "OK", ContentLength: 0, Close: true, Fields: []string{"Connection: close", "Content-Length: 0"}}},
		{"HTTP/1.0 closes by default", head("HTTP/1.0 200 OK", "Content-Length: 0"),
			respView{Status: 200, Reason: "OK", ContentLength: 0, Close: true, Fields: []string{"Content-Length: 0"}}},
		{"HTTP/1.0 keep-alive", head("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 0"),
			respView{Status: 200, Reason: "OK", ContentLength: 0, Fields: []string{"Connection: keep-alive", "Content-Length: 0"}}},
		{"status 999", head("HTTP/1.1 999 Custom", "Content-Length: 0"),
			respView{Minor: 1, Status: 999, Reason: "Custom", ContentLength: 0, Fields: []string{"Content-Length: 0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Response
			n, err := ParseResponse([]byte(tt.in+"rest"), &r, Limits{})
			if err != nil {
				t.Fatalf("ParseResponse: got error %v, want none", err)
			}
			if n != len(tt.in) {
				t.Errorf("got length %d, want %d", n, len(tt.in))
			}
			if diff := cmp.Diff(tt.want, viewResponse(&r)); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseResponseRefuses(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		status int
	}{
		{"two-digit status", head("HTTP/1.1 20 OK"), 400},
		{"four-digit status", head("HTTP/1.1 2000 OK"), 400},
		{"status below 100", head("HTTP/1.1 099 Odd"), 400},
		{"status with a sign", head("HTTP/1.1 +20 OK"), 400},
		{"two spaces before the status", head("HTTP/1.1  200 OK"), 400},
		{"tab before the reason", head("HTTP/1.1 200\tOK"), 400},
		{"NUL in the reason", head("HTTP/1.1 200 O\x00K"), 400},
		{"bare CR in the reason", head("HTTP/1.1 200 O\rK"), 400},
		{"HTTP/2", head("HTTP/2 200 OK"), 400},
		{"HTTP/1.2", head("HTTP/1.2 200 OK"), 400},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 400},
		{"CL.TE", head("HTTP/1.1 200 OK", "Content-Length: 3", "Transfer-Encoding: chunked"), 400},
		{"two Content-Lengths", head("HTTP/1.1 200 OK", "Content-Length: 3", "Content-Length: 4"), 400},
		{"TE on HTTP/1.0", head("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"), 400},
		{"unknown TE", head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip"), 501},
		{"obs-fold", head("HTTP/1.1 200 OK", "X: a", " b"), 400},
		{"space before a colon", head("HTTP/1.1 200 OK", "Content-Length : 3"), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Response
			_, err := ParseResponse([]byte(tt.in), &r, Limits{})
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("ParseResponse: got error %v, want an *Error with status %d", err, tt.status)
			}
			if got := StatusOf(err); got != tt.status {
				t.Errorf("got status %d (%s), want %d", got, perr.Reason, tt.status)
			}
		})
	}
}

func TestParseResponseIncomplete(t *testing.T) {
	in := head("HTTP/1.1 200 OK", "Content-Length: 0")
	var r Response
	for i := 0; i < len(in); i++ {
		if _, err := ParseResponse([]byte(in[:i]), &r, Limits{}); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("prefix of %d bytes: got %v, want ErrIncomplete", i, err)
		}
	}
	if _, err := ParseResponse([]byte("HTTP/1.1 200 OK\r\nX: "+string(make([]byte, 200))), &r, Limits{MaxHead: 100}); StatusOf(err) != 431 {
		t.Errorf("oversized head without an end: got %v, want a 431", err)
	}
}

func TestBodyAllowed(t *testing.T) {
	tests := []struct {
		method string
		status int
		want   bool
	}{
		{"GET", 200, true}, {"POST", 201, true}, {"GET", 205, true}, {"GET", 404, true}, {"GET", 500, true},
		{"HEAD", 200, false}, {"HEAD", 404, false},
		{"GET", 100, false}, {"GET", 101, false}, {"GET", 103, false}, {"GET", 199, false},
		{"GET", 204, false}, {"GET", 304, false},
	}
	for _, tt := range tests {
		if got := BodyAllowed(tt.method, tt.status); got != tt.want {
			t.Errorf("BodyAllowed(%s, %d): got %v, want %v", tt.method, tt.status, got, tt.want)
		}
	}
}
