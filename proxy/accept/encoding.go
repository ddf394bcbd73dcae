package accept

import (
	"strconv"
	"strings"
)

// Encoding returns the offer the client prefers among offers (content
// codings such as "br", "zstd", "gzip", lower case), or "" when the
// identity coding is to be used. Ties go to the earlier offer, so offers
// lists the server's own preference. A coding with q=0 is refused, and
// "*" stands for every coding not named. An empty or absent header means
// identity (RFC 9110 section 12.5.3: the server may then choose, and the
// safe choice is not to encode).
func Encoding(header string, offers ...string) string {
	if header == "" {
		return ""
	}
	best, bestQ := "", 0.0
	for _, offer := range offers {
		q := qualityOf(header, offer)
		if q > bestQ {
			best, bestQ = offer, q
		}
	}
	return best
}

// qualityOf is the q-value the header gives coding: its own entry's, or
// that of "*" when it has none, or 0.
func qualityOf(header, coding string) float64 {
	q, star := -1.0, -1.0
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.TrimSpace(name)
		switch {
		case strings.EqualFold(name, coding), coding == "gzip" && strings.EqualFold(name, "x-gzip"):
			q = max(q, parseQ(params))
		case name == "*":
			star = parseQ(params)
		}
	}
	if q >= 0 {
		return q
	}
	return max(star, 0)
}

// parseQ reads the q parameter of an entry's parameters ("q=0.5"); an
// entry without one has q=1, and a malformed one counts as 0 (refused),
// the cautious reading.
func parseQ(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}
