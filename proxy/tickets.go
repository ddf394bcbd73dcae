package proxy

import (
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"
)

// Session ticket keys. crypto/tls on its own accepts a ticket for 7 days
// (its keys rotate daily but each is kept a week), so a stolen ticket
// key or ticket resumes sessions, with the client's old authentication,
// for a week. drawbridge supplies its own keys instead: a new one every
// ticketRotation, the last ticketKeysKept accepted, so no ticket resumes
// a session after ticketRotation*ticketKeysKept (24h).
const (
	ticketRotation = 8 * time.Hour
	ticketKeysKept = 3
)

// ticketRing holds a Server's session ticket keys, shared by all its TLS
// listeners and kept across reloads so resumption survives them. Keys
// rotate lazily, on the first handshake after a rotation is due, so the
// ring needs no goroutine; a key is dropped by its age, so a quiet
// listener does not keep old keys past the window either.
type ticketRing struct {
	now func() time.Time

	mu   sync.Mutex  // guards the following fields
	keys []ticketKey // newest first
	flat [][32]byte  // keys' keys, as SetSessionTicketKeys takes them
	gen  uint64      // bumped whenever keys change
}

type ticketKey struct {
	key     [32]byte
	created time.Time
}

func newTicketRing(now func() time.Time) *ticketRing {
	if now == nil {
		now = time.Now
	}
	return &ticketRing{now: now}
}

// current returns the keys to use now and their generation, rotating when
// due. A ticket is issued under the newest key, which is at most
// ticketRotation old, and accepted while its key is younger than
// ticketRotation*ticketKeysKept: never more than 24h after it was issued.
func (r *ticketRing) current() ([][32]byte, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	window := ticketRotation * ticketKeysKept
	kept := r.keys[:0:0]
	for _, k := range r.keys {
		if now.Sub(k.created) < window {
			kept = append(kept, k)
		}
	}
	changed := len(kept) != len(r.keys)
	if len(kept) == 0 || now.Sub(kept[0].created) >= ticketRotation {
		k := ticketKey{created: now}
		_, _ = rand.Read(k.key[:]) // crypto/rand never fails on Linux
		kept = append([]ticketKey{k}, kept...)
		changed = true
	}
	if changed {
		r.keys = kept
		r.flat = make([][32]byte, len(kept))
		for i, k := range kept {
			r.flat[i] = k.key
		}
		r.gen++
	}
	return r.flat, r.gen
}

// apply returns a copy of c that issues and accepts tickets under the
// ring's keys, as does every config its GetConfigForClient hands out.
// Call it on the final config: without GetConfigForClient, handshakes use
// a snapshot of c taken here.
func (r *ticketRing) apply(c *tls.Config) *tls.Config {
	if c == nil || c.SessionTicketsDisabled {
		return c
	}
	out := c.Clone()
	next := c.GetConfigForClient
	own := c.Clone() // the config handshakes use when next is nil or declines
	target := &ticketTarget{}
	out.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		keys, gen := r.current()
		cc := own
		if next != nil {
			derived, err := next(h)
			if err != nil {
				return nil, err
			}
			if derived != nil {
				cc = derived
			}
		}
		target.set(cc, keys, gen)
		return cc, nil
	}
	return out
}

// ticketTarget remembers which config last got which generation of keys,
// so the keys are set once per rotation, not on every handshake.
type ticketTarget struct {
	mu  sync.Mutex // guards the following fields
	cfg *tls.Config
	gen uint64
}

func (t *ticketTarget) set(c *tls.Config, keys [][32]byte, gen uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cfg == c && t.gen == gen {
		return
	}
	c.SetSessionTicketKeys(keys)
	t.cfg, t.gen = c, gen
}
