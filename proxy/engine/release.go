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
// connection would have. It runs at most once per releaseEvery, and only
// in a lull, when the cost (a collection on another core) is not in any
// request's way.
const (
	releaseAfterParks = 1024                   // parks since the last release before one is considered
	releaseQuiet      = 250 * time.Millisecond // parking has settled: fewer than releaseQuietParks in this long
	releaseQuietParks = 64
	releaseEvery      = 30 * time.Second
)

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
	if release.parks.Add(1) < releaseAfterParks || release.checking.Load() {
		return
	}
	if last := release.last.Load(); last != 0 && time.Since(releaseBase)-time.Duration(last) < releaseEvery {
		return
	}
	if !release.checking.CompareAndSwap(false, true) {
		return
	}
	go watchForLull()
}

func watchForLull() {
	defer release.checking.Store(false)
	prev := release.parks.Load()
	for {
		time.Sleep(releaseQuiet)
		now := release.parks.Load()
		if now-prev < releaseQuietParks {
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
