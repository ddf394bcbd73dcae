package accept

import "testing"

func TestEncoding(t *testing.T) {
	offers := []string{"zstd", "br", "gzip"}
	for _, tc := range []struct {
		name, header, want string
	}{
		{"absent", "", ""},
		{"plain gzip", "gzip", "gzip"},
		{"browser", "gzip, deflate, br, zstd", "zstd"},
		{"server order breaks ties", "br, gzip", "br"},
		{"q-values win over order", "zstd;q=0.5, gzip;q=0.9", "gzip"},
		{"q=0 refuses", "gzip;q=0", ""},
		{"star", "*", "zstd"},
		{"star with refusal", "*;q=0.5, zstd;q=0", "br"},
		{"identity only", "identity", ""},
		{"malformed q refuses", "gzip;q=abc", ""},
		{"x-gzip alias", "x-gzip", "gzip"},
		{"case and spaces", " GZIP ; Q=0.8 ", "gzip"},
		{"q above 1 refused", "br;q=2, gzip", "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Encoding(tc.header, offers...); got != tc.want {
				t.Errorf("Encoding(%q) = %q, want %q", tc.header, got, tc.want)
			}
		})
	}
}

func FuzzEncoding(f *testing.F) {
	for _, s := range []string{"", "gzip", "br;q=0.1, *;q=0", "a;b;c=d,,,;q="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := Encoding(header, "zstd", "gzip")
		if got != "" && got != "zstd" && got != "gzip" {
			t.Fatalf("Encoding(%q) = %q, not an offer", header, got)
		}
	})
}
