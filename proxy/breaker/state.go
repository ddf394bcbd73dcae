package breaker

import (
	"fmt"
	"time"
)

// state is a breaker's state; its value is the drawbridge_breaker_state
// gauge's.
type state int

const (
	stateClosed state = iota
	stateHalfOpen
	stateOpen
)

func (s state) String() string {
	switch s {
	case stateClosed:
		return "closed"
	case stateHalfOpen:
		return "half-open"
	case stateOpen:
		return "open"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Why Allow refuses, as fixed errors: a refusal allocates nothing.
var (
	errRefusedOpen   = fmt.Errorf("%w: open", ErrOpen)
	errRefusedTrials = fmt.Errorf("%w: half-open, its trial attempts in flight", ErrOpen)
)

// outcome is what an attempt reports, by the policy.
type outcome int

const (
	success outcome = iota
	failure
	excluded // a canceled attempt: neither
)

// counts are the attempts of a window bucket, or of the whole window.
type counts struct {
	requests, successes, failures, excluded uint32
}

func (c *counts) sub(o counts) {
	c.requests -= min(c.requests, o.requests)
	c.successes -= min(c.successes, o.successes)
	c.failures -= min(c.failures, o.failures)
	c.excluded -= min(c.excluded, o.excluded)
}

// machine is a breaker's state and counts. Its fields are guarded by the
// Breaker's mu.
//
// Each state is a generation: an attempt reports into the generation
// that allowed it, and a report from an older one is dropped. A closed
// breaker counts over a rolling window of buckets; an attempt's outcome
// goes into the bucket of its start, and is dropped once that bucket has
// left the window. A run of failures counts only the failures still in
// the window.
type machine struct {
	state   state
	gen     uint64
	start   time.Time // of the generation: bucket ages count from it
	expiry  time.Time // an open breaker's end
	age     int64     // the current bucket's (never negative)
	total   counts    // over the window
	buckets []counts  // the window, indexed by age modulo its length
	runFail uint32    // failures in a row, within the window
	runOK   uint32    // successes in a row
}

// settings are what a machine's decisions depend on.
type settings struct {
	consecutive uint32        // failures in a row that open a closed breaker
	ratio       float64       // share of failed attempts that opens it
	minRequests uint32        // finished attempts ratio needs
	trials      uint32        // attempts a half-open breaker lets through
	bucket      time.Duration // a window bucket's span
	openFor     time.Duration
}

func newSettings(cfg Config) settings {
	return settings{consecutive: cfg.ConsecutiveFailures, ratio: cfg.FailureRatio, minRequests: cfg.MinRequests,
		trials: max(cfg.HalfOpenRequests, 1), bucket: max(cfg.Window/10, time.Millisecond), openFor: cfg.OpenTimeout}
}

// windowBuckets is how many buckets of s.bucket cover window.
func (s *settings) windowBuckets(window time.Duration) int {
	return max(1, int((window+s.bucket-1)/s.bucket))
}

// advance moves the machine to now: an open breaker whose time is up is
// half-open; a closed one's window rolls. It returns the state change, if
// any (from == to when none).
func (m *machine) advance(s *settings, now time.Time) (from, to state) {
	switch m.state {
	case stateOpen:
		if now.After(m.expiry) {
			return m.enter(s, stateHalfOpen, now)
		}
	case stateClosed:
		if now.Sub(m.start) >= 0 {
			m.roll(int64(now.Sub(m.start) / s.bucket))
		}
	}
	return m.state, m.state
}

// roll moves the window's head to bucket age, emptying the buckets it
// passes: their attempts leave the window.
func (m *machine) roll(age int64) {
	if age <= m.age {
		return
	}
	n := int64(len(m.buckets))
	if age-m.age >= n {
		m.clear()
		m.age = age
		return
	}
	for m.age < age {
		m.age++
		b := &m.buckets[m.age%n]
		m.total.sub(*b)
		*b = counts{}
	}
	m.runFail = min(m.runFail, m.total.failures)
	m.runOK = min(m.runOK, m.total.successes)
}

func (m *machine) clear() {
	m.age, m.total, m.runFail, m.runOK = 0, counts{}, 0, 0
	clear(m.buckets)
}

// enter starts a generation in state to.
func (m *machine) enter(s *settings, to state, now time.Time) (from, _ state) {
	from, m.state = m.state, to
	m.gen++
	m.start = now
	m.clear()
	if to == stateOpen {
		m.expiry = now.Add(s.openFor)
	}
	return from, to
}

// allow counts an attempt in, or says why not.
func (m *machine) allow(s *settings) error {
	switch {
	case m.state == stateOpen:
		return errRefusedOpen
	case m.state == stateHalfOpen && m.total.requests-min(m.total.requests, m.total.excluded) >= s.trials:
		return errRefusedTrials
	}
	m.total.requests++
	m.buckets[m.age%int64(len(m.buckets))].requests++
	return nil
}

// report counts the outcome of an attempt of generation gen, started in
// bucket age, and returns the state change it makes.
func (m *machine) report(s *settings, gen uint64, age int64, o outcome, now time.Time) (from, to state) {
	if gen != m.gen || age > m.age || m.age-age >= int64(len(m.buckets)) {
		return m.state, m.state
	}
	b := &m.buckets[age%int64(len(m.buckets))]
	switch o {
	case excluded:
		m.total.excluded++
		b.excluded++
	case success:
		m.total.successes++
		b.successes++
		m.runOK++
		m.runFail = 0
		if m.state == stateHalfOpen && m.runOK >= s.trials {
			return m.enter(s, stateClosed, now)
		}
	case failure:
		m.total.failures++
		b.failures++
		m.runFail++
		m.runOK = 0
		if m.state == stateHalfOpen || m.state == stateClosed && m.tripped(s) {
			return m.enter(s, stateOpen, now)
		}
	}
	return m.state, m.state
}

// tripped: failures in a row, or the failure ratio of the attempts that
// finished in the window once there are enough of them.
func (m *machine) tripped(s *settings) bool {
	if m.runFail >= s.consecutive {
		return true
	}
	finished := m.total.successes + m.total.failures
	return finished >= s.minRequests && float64(m.total.failures) >= s.ratio*float64(finished)
}
