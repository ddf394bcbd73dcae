package ratelimit

import (
	"container/list"
	"hash/maphash"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// shards split the table so concurrent requests rarely share a lock.
const shards = 16

// Limiter holds one token bucket per key, at most Config.MaxKeys of them.
type Limiter struct {
	limit rate.Limit
	burst int
	seed  maphash.Seed
	shard [shards]shard
}

type shard struct {
	mu    sync.Mutex // guards the following fields
	keys  map[string]*list.Element
	order *list.List // front: most recently used; values are *entry
	max   int
}

type entry struct {
	key    string
	bucket *rate.Limiter
}

// New returns a Limiter for cfg, which must have had Defaults and Validate.
func New(cfg Config) *Limiter {
	l := &Limiter{limit: rate.Limit(cfg.Rate), burst: cfg.Burst, seed: maphash.MakeSeed()}
	per := max(1, cfg.MaxKeys/shards)
	for i := range l.shard {
		l.shard[i] = shard{keys: make(map[string]*list.Element), order: list.New(), max: per}
	}
	return l
}

// Allow takes a token from key's bucket at now. When there is none it
// returns false and how long until there will be (for Retry-After).
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	b := l.bucket(key)
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused request takes nothing
		return false, d
	}
	return true, 0
}

// Len is the number of keys held.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shard {
		s := &l.shard[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}

// bucket finds or makes key's bucket, forgetting the least recently used
// key of the shard when it is full.
func (l *Limiter) bucket(key string) *rate.Limiter {
	s := &l.shard[maphash.String(l.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.keys[key]; ok {
		s.order.MoveToFront(el)
		return el.Value.(*entry).bucket //nolint:errcheck // the list holds only *entry
	}
	var e *entry
	if len(s.keys) >= s.max {
		// Reuse the oldest entry's list element; the bucket is new, since a
		// request may still hold the old one.
		el := s.order.Back()
		e = el.Value.(*entry) //nolint:errcheck // the list holds only *entry
		delete(s.keys, e.key)
		e.key, e.bucket = key, rate.NewLimiter(l.limit, l.burst)
		s.order.MoveToFront(el)
		s.keys[key] = el
		return e.bucket
	}
	e = &entry{key: key, bucket: rate.NewLimiter(l.limit, l.burst)}
	s.keys[key] = s.order.PushFront(e)
	return e.bucket
}
