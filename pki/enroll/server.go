package enroll

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drawbridge-proxy/drawbridge/pki/ca"
	"github.com/drawbridge-proxy/drawbridge/pki/identity"
	"github.com/drawbridge-proxy/drawbridge/pki/metrics"
	"github.com/drawbridge-proxy/drawbridge/pki/part"
	"github.com/drawbridge-proxy/drawbridge/pki/trust"
	"github.com/drawbridge-proxy/drawbridge/telemetry"
)

// Path is where Handler is usually mounted.
const Path = "/v1/pki/enroll"

// MinTokenLength is the shortest bootstrap token accepted, in bytes.
const MinTokenLength = 32

// enrollRequest is the body of an enrollment request.
type enrollRequest struct {
	// CSR is the PEM certificate request; its key becomes the leaf's key.
	CSR string `json:"csr"`
	// Identity is the SPIFFE ID asked for.
	Identity string `json:"identity"`
	// DNSNames are the DNS names asked for; each must be allowed for the
	// identity (by its token's dns_names or the current certificate).
	DNSNames []string `json:"dns_names,omitempty"`
}

// enrollResponse is the body of a successful enrollment.
type enrollResponse struct {
	// Chain is the PEM leaf then intermediates.
	Chain string `json:"certificate_chain"`
	// TrustBundle is the PEM roots the caller should trust from now on.
	TrustBundle string `json:"trust_bundle"`
}

type enrollError struct {
	Error string `json:"error"`
}

// Handler is the CA side of enrollment: POST a CSR and either a
// bootstrap token (Authorization: Bearer, first enrollment) or, over a TLS
// connection with a current certificate from this CA, nothing more
// (renewal). Serve it on a listener whose config comes from
// Manager.ServerConfig with ClientCertOptional, so renewing clients'
// certificates are verified by crypto/tls.
//
// Tokens are read from their files on every request (so a replaced secret
// applies at once), compared in constant time, bound to one identity, and
// never logged. Responses never carry internal errors.
type Handler struct {
	ca      *ca.CA
	tokens  []Token
	log     *slog.Logger
	metrics *metrics.Metrics
	now     func() time.Time

	refusals telemetry.LogLimiter // holds back floods of refusal lines
	guesses  *guessGuard          // locks out sources that guess tokens
	rates    *rateGuard           // bounds every source's requests (rate.go)
}

// NewHandler returns the enrollment handler of ca for cfg (already
// validated as part of Config).
func NewHandler(ca *ca.CA, cfg ServerConfig, deps part.Deps) (*Handler, error) {
	m, err := metrics.New(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	return &Handler{
		ca:      ca,
		tokens:  slices.Clone(cfg.Tokens),
		log:     deps.Log().With("component", "pki.enroll"),
		metrics: m,
		now:     deps.Now(),
		guesses: newGuessGuard(deps.Now()),
		rates:   newRateGuard(deps.Now()),
	}, nil
}

// refusal is an enrollment refused with a status; reason is logged, the
// client sees only the status text.
type refusal struct {
	status int
	reason string
}

func (r *refusal) Error() string { return r.reason }

// errUnknownToken is a bearer token that matches no configured one: a
// guess, counted against its source (guessGuard).
var errUnknownToken = &refusal{http.StatusForbidden, "unknown bootstrap token"}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, enrollError{Error: "use POST"})
		return
	}
	method := "token"
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		method = "certificate"
	}
	src := sourceOf(r.RemoteAddr)
	if ok, wait := h.rates.allow(src); !ok {
		h.metrics.Enrollment(method, "rate_limited")
		if ok, suppressed := h.refusals.Allow("rate"); ok {
			h.log.Warn("enrollment refused: source over its request rate", "remote", r.RemoteAddr,
				"rate_per_second", ratePerSecond, "burst", rateBurst, suppressed)
		}
		tooManyRequests(w, wait)
		return
	}
	if method == "token" {
		if until, locked := h.guesses.lockedOut(src); locked {
			h.metrics.Enrollment(method, "locked_out")
			tooManyRequests(w, until.Sub(h.now()))
			return
		}
	}
	resp, err := h.enroll(r, method)
	if errors.Is(err, errUnknownToken) && h.guesses.failed(src) {
		h.log.Warn("enrollment source locked out after guessing tokens", "remote", r.RemoteAddr,
			"failures", guessFailures, "within", guessWindow.String(), "for", guessLockout.String())
	}
	if err != nil {
		var rf *refusal
		if !errors.As(err, &rf) {
			rf = &refusal{status: http.StatusInternalServerError, reason: err.Error()}
		}
		h.metrics.Enrollment(method, "refused")
		if ok, suppressed := h.refusals.Allow(method + ":" + strconv.Itoa(rf.status)); ok {
			h.log.Warn("enrollment refused", "remote", r.RemoteAddr, "method", method, "status", rf.status, "reason", rf.reason, suppressed)
		}
		writeJSON(w, rf.status, enrollError{Error: strings.ToLower(http.StatusText(rf.status))})
		return
	}
	h.metrics.Enrollment(method, "issued")
	writeJSON(w, http.StatusOK, resp)
}

// tooManyRequests answers 429 with the whole seconds, rounded up, until
// the source may try again.
func tooManyRequests(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
	writeJSON(w, http.StatusTooManyRequests, enrollError{Error: "too many requests"})
}

func (h *Handler) enroll(r *http.Request, method string) (*enrollResponse, error) {
	var req enrollRequest
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, &refusal{http.StatusBadRequest, "decoding request: " + err.Error()}
	}
	id, err := identity.Parse(req.Identity)
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, err.Error()}
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, err.Error()}
	}
	var allowedDNS []string
	if method == "certificate" {
		allowedDNS, err = h.byCertificate(r, id)
	} else {
		allowedDNS, err = h.byToken(r, id)
	}
	if err != nil {
		return nil, err
	}
	for _, d := range req.DNSNames {
		if !slices.Contains(allowedDNS, d) {
			return nil, &refusal{http.StatusForbidden, fmt.Sprintf("DNS name %q is not allowed for %s", d, id)}
		}
	}
	chain, err := h.ca.Sign(r.Context(), csr, ca.LeafRequest{ID: id, DNSNames: req.DNSNames, Via: "enrollment"})
	if err != nil {
		return nil, err
	}
	h.log.Info("enrolled", "identity", id.String(), "method", method, "expires", chain[0].NotAfter, "remote", r.RemoteAddr)
	return &enrollResponse{Chain: string(trust.ChainPEM(chain)), TrustBundle: string(h.ca.TrustBundle().PEM())}, nil
}

// byCertificate allows a renewal by the holder of a current certificate
// for the same identity; the DNS names allowed are those it has, plus
// those of its token if any.
func (h *Handler) byCertificate(r *http.Request, id identity.ID) ([]string, error) {
	peer, err := identity.FromConnectionState(*r.TLS)
	if err != nil {
		return nil, &refusal{http.StatusForbidden, err.Error()}
	}
	if peer != id {
		return nil, &refusal{http.StatusForbidden, fmt.Sprintf("certificate of %s cannot renew %s", peer, id)}
	}
	allowed := slices.Clone(r.TLS.VerifiedChains[0][0].DNSNames)
	for _, t := range h.tokens {
		if t.Identity == id.String() {
			allowed = append(allowed, t.DNSNames...)
		}
	}
	return allowed, nil
}

// byToken checks the bearer token against every configured token in
// constant time, then its identity and expiry.
func (h *Handler) byToken(r *http.Request, id identity.ID) ([]string, error) {
	given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || given == "" {
		return nil, &refusal{http.StatusUnauthorized, "no bootstrap token and no client certificate"}
	}
	sum := sha256.Sum256([]byte(given))
	var match *Token
	for i := range h.tokens {
		want, err := readToken(h.tokens[i].TokenFile)
		if err != nil {
			h.log.Error("reading enrollment token file", "token_file", h.tokens[i].TokenFile, "err", err)
			continue
		}
		ws := sha256.Sum256(want)
		clear(want)
		if subtle.ConstantTimeCompare(sum[:], ws[:]) == 1 && match == nil {
			match = &h.tokens[i]
		}
	}
	switch {
	case match == nil:
		return nil, errUnknownToken
	case match.Identity != id.String():
		return nil, &refusal{http.StatusForbidden, fmt.Sprintf("bootstrap token of %s used for %s", match.Identity, id)}
	case !match.Expires.IsZero() && !h.now().Before(match.Expires):
		return nil, &refusal{http.StatusForbidden, fmt.Sprintf("bootstrap token of %s expired at %s", match.Identity, match.Expires.Format(time.RFC3339))}
	}
	return match.DNSNames, nil
}

// readToken reads a token file, dropping one trailing newline.
func readToken(path string) ([]byte, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the operator configures the token file
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(b) < MinTokenLength {
		return nil, fmt.Errorf("token in %s is shorter than %d bytes", path, MinTokenLength)
	}
	return b, nil
}

func parseCSR(s string) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("csr: no PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr: %w", err)
	}
	return csr, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
