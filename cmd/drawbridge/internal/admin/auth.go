package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// CheckToken refuses a token shorter than 16 characters (surrounding
// whitespace aside): the validator of the watched admin token.
func CheckToken(v []byte) error {
	if len(bytes.TrimSpace(v)) < 16 {
		return errors.New("admin token: the file must hold at least 16 characters")
	}
	return nil
}

// ReadToken reads a bearer token from a secret file: surrounding
// whitespace is dropped, and a token shorter than 16 bytes is refused.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator names the token file
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", errors.New("admin token: the file must hold at least 16 characters")
	}
	return tok, nil
}

// RequireCurrentToken lets a request through to h only when it carries
// the current token, as "Authorization: Bearer TOKEN" (Prometheus'
// authorization.credentials_file) or as the password of basic auth with
// any user name (so a browser can log in to the status page). Anything
// else gets 401. token is called on every request (a watched secret), and
// surrounding whitespace is ignored.
func RequireCurrentToken(token func() []byte, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := presented(r)
		want := sha256.Sum256(bytes.TrimSpace(token()))
		// Comparing digests keeps the comparison constant-time whatever the lengths.
		if sum := sha256.Sum256([]byte(got)); ok && subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="drawbridge admin", charset="UTF-8"`)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	})
}

func presented(r *http.Request) (string, bool) {
	if _, pass, ok := r.BasicAuth(); ok {
		return pass, true
	}
	auth := r.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok), true
	}
	return "", false
}
