package engine

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// After a wave of connections goes idle (a reconnect storm, a burst of
// clients that keep their connections), the heap is as large as the wave
// made it: the garbage of its requests, the buffers and stacks of the
// connections that were busy. Go gives that memory back to the system
// only slowly and only down to about twice the live heap, and with idle
// connections nothing allocates, so no collection comes to start even
// that. So once enough connections have parked and parking has settled,
// the engine collects (twice, so the buffer pools are emptied too) and
// returns the free memory at once, as an event loop that frees per
// connection would have. It runs after releaseAfterParks parks at the
// most once per releaseEvery, and only in a lull (parking has settled), so
// its cost (two collections, on another core) is in no request's way; a
// steady churn of connections that park and wake never sees one.
// Tests change these (atomically: connections of an earlier test may
// still read them).
var (
	releaseAfterParks = knob(1024)                   // parks since the last release before one is considered
	releaseQuiet      = knob(250 * time.Millisecond) // a lull: fewer than releaseQuietParks parks in this long
	releaseQuietParks = knob(8)
	releaseEvery      = knob(30 * time.Second)
)

// knobValue is a tunable number or duration (knob makes one).
type knobValue struct{ v atomic.Int64 }

func knob[T ~int64 | ~int](v T) *knobValue {
	k := &knobValue{}
	k.v.Store(int64(v))
	return k
}

func (k *knobValue) n() int64                { return k.v.Load() }
func (k *knobValue) d() time.Duration        { return time.Duration(k.v.Load()) }
func (k *knobValue) set(v int64) (old int64) { return k.v.Swap(v) }

var release struct {
	parks    atomic.Int64 // since the last release
	checking atomic.Bool  // a lull watcher runs
	last     atomic.Int64 // mono time of the last release
	count    atomic.Int64 // releases so far (tests)
}

var releaseBase = time.Now()

// noteParked counts a park and, past releaseAfterParks, starts the lull
// watcher.
func noteParked() {
	if release.parks.Add(1) < releaseAfterParks.n() || release.checking.Load() {
		return
	}
	if !release.checking.CompareAndSwap(false, true) {
		return
	}
	go watchForLull()
}

func watchForLull() {
	defer release.checking.Store(false)
	if last := release.last.Load(); last != 0 {
		time.Sleep(time.Duration(last) + releaseEvery.d() - time.Since(releaseBase))
	}
	prev := release.parks.Load()
	for {
		time.Sleep(releaseQuiet.d())
		now := release.parks.Load()
		if now-prev < releaseQuietParks.n() {
			break
		}
		prev = now
	}
	release.parks.Store(0)
	release.last.Store(int64(time.Since(releaseBase)))
	release.count.Add(1)
	runtime.GC()         // the pools' contents move to their victim caches,
	debug.FreeOSMemory() // which this collection drops; then the free pages go back
}
