package proxy

import (
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/a/b", "/a/b", true},
		{"/a/b/", "/a/b/", true},
		{"/a/./b", "/a/b", true},
		{"/a/../b", "/b", true},
		{"/../../etc/passwd", "/etc/passwd", true},
		{"//a//b//", "/a/b/", true},
		{"/a/..", "/", true},
		{"/a/.", "/a", true},
		{"a/b", "", false},
		{"", "", false},
		{"/a\\b", "", false},
		{"/a\x00b", "", false},
		{"/a\nb", "", false},
	}
	for _, tc := range tests {
		got, ok := normalizePath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("normalizePath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x/./y/", "/a\\b", "/%2e%2e/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := normalizePath(in)
		if !ok {
			return
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") ||
			strings.Contains(out, "/../") || strings.HasSuffix(out, "/..") || strings.Contains(out, "/./") {
			t.Fatalf("normalizePath(%q) = %q, which is not normal", in, out)
		}
		if again, _ := normalizePath(out); again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}
	})
}

func TestFramingScanner(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []bool
	}{
		{"plain get", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", []bool{false}},
		{"both headers", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []bool{true}},
		{"both, other order and case", "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n", []bool{true}},
		{"body skipped by length", "POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\nGET / HTTP/1.1\r\nX: y\r\n\r\n....GET / HTTP/1.1\r\n\r\n", []bool{false, false}},
		{"chunked body with extensions and trailers", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"5;ext=1\r\nhello\r\n0\r\nTrailer-A: b\r\n\r\nGET /2 HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", []bool{false, true}},
		{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", []bool{false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Feed byte by byte and all at once: verdicts must not depend on read sizes.
			for _, step := range []int{1, 7, len(tc.stream)} {
				s := framingScanner{maxLine: 1 << 16}
				var got []bool
				for i := 0; i < len(tc.stream); i += step {
					end := min(i+step, len(tc.stream))
					s.feed([]byte(tc.stream[i:end]), &got)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("step %d: verdicts %v, want %v", step, got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Fatalf("step %d: verdicts %v, want %v", step, got, tc.want)
					}
				}
			}
		})
	}
}

func FuzzFramingScanner(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 3)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), 1)
	f.Fuzz(func(t *testing.T, stream []byte, step int) {
		if step <= 0 {
			step = 1
		}
		s := framingScanner{maxLine: 4096}
		var got []bool
		for i := 0; i < len(stream); i += step {
			s.feed(stream[i:min(i+step, len(stream))], &got)
		}
		if len(s.line) > 4096 {
			t.Fatalf("line buffer grew to %d bytes past its bound", len(s.line))
		}
	})
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"64KiB", 64 << 10, true}, {"10MiB", 10 << 20, true}, {"1GiB", 1 << 30, true},
		{"1000", 1000, true}, {"5KB", 5000, true}, {"7 MB", 7_000_000, true}, {"12B", 12, true},
		{"-1", 0, false}, {"1.5MiB", 0, false}, {"ten", 0, false}, {"", 0, false}, {"99999999999GiB", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted := trustedProxies{}
	for _, c := range []string{"10.0.0.0/8", "127.0.0.1"} {
		p, err := parsePrefix(c)
		if err != nil {
			t.Fatal(err)
		}
		trusted = append(trusted, p)
	}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
		trustedPeer  bool
	}{
		{"untrusted peer ignores the header", "192.0.2.1:5000", []string{"1.2.3.4"}, "192.0.2.1", false},
		{"trusted peer, one hop", "127.0.0.1:5000", []string{"198.51.100.9"}, "198.51.100.9", true},
		{"skips trusted hops from the right", "10.0.0.2:1", []string{"198.51.100.9, 10.0.0.5", "10.0.0.7"}, "198.51.100.9", true},
		{"garbage stops the walk", "10.0.0.2:1", []string{"evil, 10.0.0.5"}, "10.0.0.5", true},
		{"no header", "10.0.0.2:1", nil, "10.0.0.2", true},
	}
	for _, tc := range tests {
		got, peer := trusted.clientIP(tc.remote, tc.xff)
		if got != tc.want || peer != tc.trustedPeer {
			t.Errorf("%s: clientIP = %q, %v; want %q, %v", tc.name, got, peer, tc.want, tc.trustedPeer)
		}
	}
}
