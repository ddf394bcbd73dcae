package secret

import (
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Validator checks a new value before it replaces the current one.
type Validator func(value []byte) error

// Secret is one named secret and its current value.
type Secret struct {
	name     string
	ref      Ref
	validate Validator

	value   atomic.Pointer[[]byte]
	version atomic.Uint64

	mu        sync.Mutex // guards the following fields
	lastRaw   []byte     // source content last seen, to notice changes
	seen      bool
	listeners []func()
}

// Name is the secret's name as configured.
func (s *Secret) Name() string { return s.name }

// Ref is where the secret is read from.
func (s *Secret) Ref() Ref { return s.ref }

// Value returns the current value. Callers must not modify or retain it
// longer than needed, and must never log it.
func (s *Secret) Value() []byte {
	if v := s.value.Load(); v != nil {
		return *v
	}
	return nil
}

// Version counts the values the secret has had; it grows on each rotation.
func (s *Secret) Version() uint64 { return s.version.Load() }

// OnChange registers f to run after each rotation to a new valid value.
func (s *Secret) OnChange(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, f)
}

// String, GoString and Format keep the value out of every log and error.
func (s *Secret) String() string   { return "secret(" + s.name + ")" }
func (s *Secret) GoString() string { return s.String() }

// Format prints the secret's name whatever the verb.
func (s *Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// read returns the secret's source content.
func (s *Secret) read() ([]byte, error) {
	if s.ref.Kind == "env" {
		v, ok := os.LookupEnv(s.ref.Path)
		if !ok {
			return nil, fmt.Errorf("secret %s: %w: environment variable %s is not set", s.name, errUnreadable, s.ref.Path)
		}
		return []byte(v), nil
	}
	f, err := os.Open(s.ref.Path)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w: %w", s.name, errUnreadable, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w: %w", s.name, errUnreadable, err)
	}
	return raw, nil
}

// changed reports whether raw differs from the content seen last, and
// remembers it, so the same bad content is reported once, not every poll.
func (s *Secret) changed(raw []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen && subtle.ConstantTimeCompare(s.lastRaw, raw) == 1 {
		return false
	}
	s.lastRaw, s.seen = append(s.lastRaw[:0], raw...), true
	return true
}

// update installs the value in raw after normalising and validating it.
func (s *Secret) update(raw []byte) error {
	v, err := normalize(raw)
	if err != nil {
		return fmt.Errorf("secret %s (%s) %w", s.name, s.ref, err)
	}
	if cur := s.Value(); cur != nil && subtle.ConstantTimeCompare(cur, v) == 1 {
		return errUnchanged
	}
	return s.install(v)
}

// install validates v and makes it current.
func (s *Secret) install(v []byte) error {
	if s.validate != nil {
		if err := s.validate(v); err != nil {
			return fmt.Errorf("secret %s (%s) was refused: %w", s.name, s.ref, err)
		}
	}
	cp := append([]byte(nil), v...)
	s.value.Store(&cp)
	s.version.Add(1)
	s.mu.Lock()
	listeners := append([]func(){}, s.listeners...)
	s.mu.Unlock()
	for _, f := range listeners {
		f()
	}
	return nil
}
