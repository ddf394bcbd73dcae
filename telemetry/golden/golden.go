package golden

import (
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// BucketWidth is the time one bucket of a ring covers.
	BucketWidth = 10 * time.Second
	// Buckets is how many a ring holds: 15 minutes.
	Buckets = 90
	// MaxSeries bounds the series kept (routes and targets together): at
	// about 25 KB each, 3.2 MB at most.
	MaxSeries = 128
	// Overflow names the series that counts what MaxSeries left out.
	Overflow = "(other)"

	bins = 64 // latency histogram bins, 100µs to 100s on a log scale
)

// binBase and binGrowth place bin i's upper edge at binBase * binGrowth^i:
// 64 bins span 2^20, 100µs to about 100s, each 25% wider than the last.
var (
	binBase   = 100 * time.Microsecond
	binGrowth = math.Pow(2, 20.0/(bins-1))
)

// Kind says what a series is of.
type Kind uint8

const (
	Route  Kind = iota // a listener's route
	Target             // an upstream's target
)

// bucket is one BucketWidth of one series.
type bucket struct {
	epoch    int64 // start of the bucket in BucketWidth units since the Unix epoch
	requests uint32
	errors   uint32 // 5xx
	hist     [bins]uint32
}

type series struct {
	mu   sync.Mutex // guards ring
	ring [Buckets]bucket
}

// Rings holds every series. The zero value is not usable; use New.
type Rings struct {
	now   func() time.Time
	start time.Time // windows never reach back before it

	mu     sync.RWMutex // guards series
	series map[key]*series
}

type key struct {
	kind        Kind
	group, name string
}

// New returns empty rings reading time from now (nil: time.Now).
func New(now func() time.Time) *Rings {
	if now == nil {
		now = time.Now
	}
	return &Rings{now: now, start: now(), series: map[key]*series{}}
}

// Observe records one finished request of the series named group/name
// (listener and route, or upstream and target; two strings, so the hot
// path joins none). Safe for concurrent use.
func (g *Rings) Observe(kind Kind, group, name string, status int, d time.Duration) {
	if g == nil {
		return
	}
	s := g.get(key{kind, group, name})
	epoch := g.now().UnixNano() / int64(BucketWidth)
	s.mu.Lock()
	b := &s.ring[epoch%Buckets]
	if b.epoch != epoch {
		*b = bucket{epoch: epoch}
	}
	b.requests++
	if status >= 500 {
		b.errors++
	}
	b.hist[bin(d)]++
	s.mu.Unlock()
}

func (g *Rings) get(k key) *series {
	g.mu.RLock()
	s := g.series[k]
	g.mu.RUnlock()
	if s != nil {
		return s
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if s = g.series[k]; s != nil {
		return s
	}
	if len(g.series) >= MaxSeries-2 { // two kept for the overflow series
		g.evictStaleLocked()
	}
	if len(g.series) >= MaxSeries-2 {
		k.group, k.name = Overflow, ""
		if s = g.series[k]; s != nil {
			return s
		}
	}
	s = &series{}
	g.series[k] = s
	return s
}

// evictStaleLocked drops the series without a request in the last 15
// minutes (a route removed by a reload, a target discovery replaced), so
// new ones get a series of their own instead of the overflow.
func (g *Rings) evictStaleLocked() {
	oldest := g.now().UnixNano()/int64(BucketWidth) - Buckets
	for k, s := range g.series {
		if k.group == Overflow {
			continue
		}
		if s.latest() <= oldest {
			delete(g.series, k)
		}
	}
}

// latest is the epoch of the newest bucket written.
func (s *series) latest() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e int64
	for i := range s.ring {
		e = max(e, s.ring[i].epoch)
	}
	return e
}

func bin(d time.Duration) int {
	if d <= binBase {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(binBase)) / math.Log(binGrowth)))
	return min(i, bins-1)
}

// mid is the geometric middle of bin i: the latency a percentile in it
// reports, within 12% of the truth.
func mid(i int) time.Duration {
	if i == 0 {
		return binBase
	}
	return time.Duration(float64(binBase) * math.Pow(binGrowth, float64(i)-0.5))
}

// Window is a summary of the latest stretch of a series.
type Window struct {
	Requests int64
	// RPS is requests per second over the window.
	RPS float64
	// Success is the share of requests not answered 5xx; 1 without requests.
	Success       float64
	P50, P95, P99 time.Duration
}

// Point is one bucket of a sparkline.
type Point struct {
	Requests, Errors uint32
}

// Stats is what a series shows: its last 1 and 5 minutes and 15 minutes of
// points, oldest first.
type Stats struct {
	Kind     Kind
	Group    string // listener or upstream; Overflow for the overflow series
	Name     string // route or target; "" for the overflow series
	Last1m   Window
	Last5m   Window
	Points   []Point // Buckets of them, oldest first; the last is the current bucket
	Interval time.Duration
}

// Snapshot summarizes every series with traffic in the last 15 minutes,
// sorted by kind and name.
func (g *Rings) Snapshot() []Stats {
	if g == nil {
		return nil
	}
	now := g.now()
	g.mu.RLock()
	keys := make([]key, 0, len(g.series))
	all := make([]*series, 0, len(g.series))
	for k, s := range g.series {
		keys = append(keys, k)
		all = append(all, s)
	}
	g.mu.RUnlock()
	out := make([]Stats, 0, len(keys))
	for i, k := range keys {
		st := all[i].stats(now, now.Sub(g.start))
		if st.Last5m.Requests == 0 && !hasPoints(st.Points) {
			continue
		}
		st.Kind, st.Group, st.Name = k.kind, k.group, k.name
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Stats) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		return strings.Compare(a.Group+"/"+a.Name, b.Group+"/"+b.Name)
	})
	return out
}

func hasPoints(ps []Point) bool {
	for _, p := range ps {
		if p.Requests > 0 {
			return true
		}
	}
	return false
}

// stats reads the ring at now: the current bucket is partial, so a window
// of n buckets spans n-1 full ones and the elapsed part of the current one.
func (s *series) stats(now time.Time, age time.Duration) Stats {
	epoch := now.UnixNano() / int64(BucketWidth)
	elapsed := time.Duration(now.UnixNano() % int64(BucketWidth))
	s.mu.Lock()
	ring := s.ring // a copy (about 25 KB), read outside the lock
	s.mu.Unlock()
	st := Stats{Points: make([]Point, Buckets), Interval: BucketWidth}
	for age := range Buckets {
		e := epoch - int64(age)
		b := &ring[((e%Buckets)+Buckets)%Buckets]
		if b.epoch == e {
			st.Points[Buckets-1-age] = Point{Requests: b.requests, Errors: b.errors}
		}
	}
	st.Last1m = window(&ring, epoch, 6, elapsed, age)
	st.Last5m = window(&ring, epoch, 30, elapsed, age)
	return st
}

// window sums the latest n buckets; its rate divides by their span, or by
// the rings' age when that is shorter (just after the start).
func window(ring *[Buckets]bucket, epoch int64, n int, elapsed, age time.Duration) Window {
	var w Window
	var errs int64
	var hist [bins]int64
	for age := range n {
		e := epoch - int64(age)
		b := &ring[((e%Buckets)+Buckets)%Buckets]
		if b.epoch != e {
			continue
		}
		w.Requests += int64(b.requests)
		errs += int64(b.errors)
		for i, c := range b.hist {
			hist[i] += int64(c)
		}
	}
	span := time.Duration(n-1)*BucketWidth + elapsed
	if age > 0 && age < span {
		span = max(age, time.Second) // a burst in the first instant is no thousand-fold rate
	}
	w.RPS = float64(w.Requests) / span.Seconds()
	w.Success = 1
	if w.Requests > 0 {
		w.Success = 1 - float64(errs)/float64(w.Requests)
		w.P50, w.P95, w.P99 = quantile(&hist, w.Requests, 0.50), quantile(&hist, w.Requests, 0.95), quantile(&hist, w.Requests, 0.99)
	}
	return w
}

// quantile is the middle of the bin holding the q-th request.
func quantile(hist *[bins]int64, total int64, q float64) time.Duration {
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, c := range hist {
		seen += c
		if seen >= rank {
			return mid(i)
		}
	}
	return mid(bins - 1)
}
