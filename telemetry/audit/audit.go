package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of an audited action.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
	ResultDenied  = "denied"
)

// Event is one security-relevant action, as the caller describes it.
type Event struct {
	// Name says what happened, from a fixed vocabulary owned by the caller
	// ("secret.read", "cert.issue", "authz.deny", ...). It becomes a metric
	// label, so it must never carry user-supplied text.
	Name string
	// Subject is what the action was about: a secret's name, a SPIFFE ID.
	Subject string
	// Actor is who or what acted: an identity, "operator", "drawbridge".
	Actor string
	// Result is success, failure or denied.
	Result string
	// Reason explains a failure or a denial. Never a secret.
	Reason string
	// RequestID ties the entry to an access log line, when there is one.
	RequestID string
	// Fingerprint is Log.Fingerprint of the secret involved, when there is one.
	Fingerprint string
}

// Entry is one line of the audit file.
type Entry struct {
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Event       string    `json:"event"`
	Subject     string    `json:"subject,omitempty"`
	Actor       string    `json:"actor,omitempty"`
	Result      string    `json:"result"`
	Reason      string    `json:"reason,omitempty"`
	RequestID   string    `json:"request_id,omitempty"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	// Prev is the Hash of the entry before, empty for the first.
	Prev string `json:"prev"`
	// Hash is hex SHA-256 over Prev and the entry's JSON with Hash empty.
	Hash string `json:"hash"`
}

// computeHash returns the hash e should carry. The JSON encoding of Entry is
// canonical here: fixed field order, UTC times in RFC 3339 with nanoseconds.
func computeHash(e Entry) string {
	e.Hash = ""
	body, _ := json.Marshal(e) // cannot fail: only strings, numbers and a time
	sum := sha256.New()
	sum.Write([]byte(e.Prev))
	sum.Write([]byte{'\n'})
	sum.Write(body)
	return hex.EncodeToString(sum.Sum(nil))
}

// Deps are what a Log is given.
type Deps struct {
	// Logger receives the chain head at open and close, and write failures.
	// Nil discards them.
	Logger *slog.Logger
	// Metrics, when not nil, receives drawbridge_audit_events_total and
	// drawbridge_audit_write_errors_total.
	Metrics prometheus.Registerer
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Log appends hash-chained entries to one file. It is safe for concurrent use.
type Log struct {
	log     *slog.Logger
	now     func() time.Time
	key     []byte
	events  *prometheus.CounterVec
	errs    prometheus.Counter
	lastOK  prometheus.Gauge
	pathFor string

	mu     sync.Mutex // guards the following fields
	f      *os.File
	fInfo  os.FileInfo // f's identity, to tell when the path names another file
	seq    uint64
	prev   string
	closed bool
}

// Open opens (or creates, mode 0600) the audit file named in cfg and
// continues the chain from its last entry. It fails when that last entry
// does not parse: a damaged tail must be looked at, not written over.
func Open(cfg Config, deps Deps) (*Log, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		return nil, errors.New("audit log: no path configured")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	key, err := ReadFingerprintKey(cfg.FingerprintKeyFile)
	if err != nil {
		return nil, err
	}
	seq, prev, err := readHead(cfg.Path)
	if err != nil {
		return nil, err
	}
	f, info, err := openAppend(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	l := &Log{log: deps.Logger, now: deps.Now, key: key, pathFor: cfg.Path, f: f, fInfo: info, seq: seq, prev: prev}
	l.registerMetrics(deps.Metrics)
	l.log.Info("audit log open", "path", cfg.Path, "seq", seq, "head", prev)
	return l, nil
}

func (l *Log) registerMetrics(reg prometheus.Registerer) {
	l.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "drawbridge_audit_events_total",
		Help: "Audit entries written, by event and result.",
	}, []string{"event", "result"})
	l.errs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "drawbridge_audit_write_errors_total",
		Help: "Audit entries that could not be written (the event itself was not undone).",
	})
	l.lastOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "drawbridge_audit_last_write_timestamp_seconds",
		Help: "When an audit entry was last written successfully (Unix time).",
	})
	if reg != nil {
		reg.MustRegister(l.events, l.errs, l.lastOK)
	}
}

// fingerprintKey reads the HMAC key, or makes a random one for this process
// when no file is named (fingerprints then compare only within one run).
// ReadFingerprintKey reads the key fingerprints are made under from path
// (Config.FingerprintKeyFile), surrounding white space dropped; it must
// hold at least 16 bytes. An empty path gives a random key, so
// fingerprints compare only within one run. The audit log and the secrets
// it records share this one reader, and so one key.
func ReadFingerprintKey(path string) ([]byte, error) {
	if path == "" {
		key := make([]byte, 32)
		_, _ = rand.Read(key) // crypto/rand.Read never fails on Linux
		return key, nil
	}
	key, err := os.ReadFile(path) // #nosec G304 -- the operator names the key file
	if err != nil {
		return nil, fmt.Errorf("reading audit fingerprint key: %w", err)
	}
	key = bytes.TrimSpace(key)
	if len(key) < 16 {
		return nil, fmt.Errorf("audit fingerprint key %s: %d bytes, want at least 16", path, len(key))
	}
	return key, nil
}

// readHead returns the sequence number and hash of the file's last entry,
// zeros for a missing or empty file.
func readHead(path string) (uint64, string, error) {
	f, err := os.Open(path) // #nosec G304 -- the operator names the audit file
	if errors.Is(err, os.ErrNotExist) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("opening audit log: %w", err)
	}
	defer f.Close()
	last, err := lastLine(f)
	if err != nil {
		return 0, "", fmt.Errorf("reading audit log %s: %w", path, err)
	}
	if len(last) == 0 {
		return 0, "", nil
	}
	var e Entry
	if err := json.Unmarshal(last, &e); err != nil || e.Hash != computeHash(e) {
		return 0, "", fmt.Errorf("audit log %s: its last line is damaged; run 'drawbridge audit verify %s' and move the file aside", path, path)
	}
	return e.Seq, e.Hash, nil
}

// lastLine returns the last non-empty line of r, reading from the end.
func lastLine(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	const chunk = 64 << 10
	size := st.Size()
	var tail []byte
	for off := size; off > 0; {
		n := int64(chunk)
		if off < n {
			n = off
		}
		off -= n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			return nil, err
		}
		tail = append(buf, tail...)
		trimmed := bytes.TrimRight(tail, "\n")
		if i := bytes.LastIndexByte(trimmed, '\n'); i >= 0 {
			return trimmed[i+1:], nil
		}
		if off == 0 {
			return trimmed, nil
		}
	}
	return nil, nil
}

// Record appends ev to the chain and syncs the file. A nil *Log records
// nothing, so callers need not check whether auditing is on. An error means the
// entry is not on disk; drawbridge_audit_write_errors_total counts it, and
// the caller decides whether the action may still proceed.
func (l *Log) Record(_ context.Context, ev Event) error {
	if l == nil {
		return nil // the audit log is off
	}
	if ev.Result == "" {
		ev.Result = ResultSuccess
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.errs.Inc()
		return errors.New("audit log is closed")
	}
	if err := l.followRotationLocked(); err != nil {
		return l.failLocked(ev, err)
	}
	e := Entry{
		Seq: l.seq + 1, Time: l.now().UTC(), Event: ev.Name, Subject: ev.Subject, Actor: ev.Actor,
		Result: ev.Result, Reason: ev.Reason, RequestID: ev.RequestID, Fingerprint: ev.Fingerprint, Prev: l.prev,
	}
	e.Hash = computeHash(e)
	line, _ := json.Marshal(e)
	line = append(line, '\n')
	if _, err := l.f.Write(line); err != nil {
		return l.failLocked(ev, err)
	}
	if err := l.f.Sync(); err != nil {
		return l.failLocked(ev, err)
	}
	l.seq, l.prev = e.Seq, e.Hash
	l.events.WithLabelValues(ev.Name, ev.Result).Inc()
	l.lastOK.Set(float64(e.Time.UnixNano()) / 1e9)
	return nil
}

// followRotationLocked reopens the path when the file was moved away (by
// logrotate, or by hand) since the last entry, so entries never go on into
// a rotated file. The new file continues the chain: its first entry links
// to the last one of the file before, and `drawbridge audit verify OLD NEW`
// checks the join. A truncation in place (copytruncate) needs nothing: the
// file is opened for appending.
func (l *Log) followRotationLocked() error {
	cur, err := os.Stat(l.pathFor)
	if err == nil && os.SameFile(cur, l.fInfo) {
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, info, err := openAppend(l.pathFor)
	if err != nil {
		return fmt.Errorf("reopening the rotated audit log: %w", err)
	}
	_ = l.f.Close()
	l.f, l.fInfo = f, info
	l.log.Info("audit log reopened after rotation", "path", l.pathFor, "seq", l.seq, "head", l.prev)
	return nil
}

// openAppend opens (or creates, mode 0600) the audit file at path for
// appending, with its identity for noticing a rotation later.
func openAppend(path string) (*os.File, os.FileInfo, error) {
	// #nosec G304 -- the operator names the audit file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

func (l *Log) failLocked(ev Event, err error) error {
	l.errs.Inc()
	l.log.Error("audit write failed", "event", ev.Name, "path", l.pathFor, "error", err.Error())
	return fmt.Errorf("writing audit entry: %w", err)
}

// Fingerprint returns the fingerprint of secret under the log's key (see
// Fingerprint); "" on a nil Log.
func (l *Log) Fingerprint(secret []byte) string {
	if l == nil {
		return ""
	}
	return Fingerprint(l.key, secret)
}

// Fingerprint is drawbridge's one keyed fingerprint of a secret, the
// audit log's and the secret watcher's: "hmac-sha256:" and the first 16
// bytes of HMAC-SHA256 under key, in hex. Equal secrets give equal
// fingerprints under one key; nothing about the secret can be recovered.
// (A certificate's fingerprint is another thing: trust.CertSHA256, not
// keyed.)
func Fingerprint(key, secret []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(secret)
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// Head returns the sequence number and hash of the last entry written.
func (l *Log) Head() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.prev
}

// Close logs the chain head and closes the file. It is idempotent.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.log.Info("audit log closed", "path", l.pathFor, "seq", l.seq, "head", l.prev)
	return l.f.Close()
}

// Problem is one break in a chain found by VerifyAfter.
type Problem struct {
	Line    int // 1-based line of the file
	Message string
}

func (p Problem) String() string { return fmt.Sprintf("line %d: %s", p.Line, p.Message) }

// Summary is what VerifyAfter learned about a file.
type Summary struct {
	Entries  int
	LastSeq  uint64
	LastHash string
	Problems []Problem
}

// VerifyAfter reads an audit file from r and checks every link of the
// chain: each line parses, its hash matches its content, its prev matches
// the hash before it, and sequence numbers run seq+1, seq+2 ... without a
// gap. seq and hash are those of the last entry before the file: zero and
// "" for a file that starts a chain, the Summary of the file before it for
// the file after a rotation. It reports every problem, not just the first;
// an error means r could not be read.
func VerifyAfter(r io.Reader, seq uint64, hash string) (Summary, error) {
	var s Summary
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	wantSeq := seq + 1
	prev, line := hash, 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			s.Problems = append(s.Problems, Problem{line, "not an audit entry: " + strings.TrimPrefix(err.Error(), "json: ")})
			prev, wantSeq = "", 0 // resynchronise on the next good line
			continue
		}
		s.Entries++
		if e.Hash != computeHash(e) {
			s.Problems = append(s.Problems, Problem{line, fmt.Sprintf("seq %d: hash does not match the content (entry altered)", e.Seq)})
		}
		if wantSeq != 0 && e.Seq != wantSeq {
			s.Problems = append(s.Problems, Problem{line, fmt.Sprintf("seq %d where %d was expected (entries missing or reordered)", e.Seq, wantSeq)})
		} else if wantSeq != 0 && e.Prev != prev {
			s.Problems = append(s.Problems, Problem{line, fmt.Sprintf("seq %d: prev does not match the hash of the entry before (chain broken)", e.Seq)})
		}
		prev, wantSeq = e.Hash, e.Seq+1
		s.LastSeq, s.LastHash = e.Seq, e.Hash
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	return s, nil
}
