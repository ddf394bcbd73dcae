package engine

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

type hooksKey struct{}

func (hooksKey) WantsCancelHooks() {}

type plainKey struct{}

// The hooks keep context.AfterFunc's contract: a removed hook never runs
// and its removal says true; a hook left in runs once, after the context
// is done; removing it then says false; one added to a done context runs
// at once.
func TestReqCtxHooks(t *testing.T) {
	r := newReqCtx(context.WithValue(context.Background(), plainKey{}, "base"))
	var ran, ranDone, removed atomic.Int32
	a := r.AddCancelHook(func() { removed.Add(1) })
	b := r.AddCancelHook(func() {
		ran.Add(1)
		if r.Err() != nil {
			ranDone.Add(1)
		}
	})
	if !r.RemoveCancelHook(a) {
		t.Error("removing a pending hook: false, want true")
	}
	if r.RemoveCancelHook(a) {
		t.Error("removing a hook twice: true, want false")
	}
	r.end()
	if got := ran.Load(); got != 1 {
		t.Fatalf("the hook left in ran %d times at the end, want 1", got)
	}
	if ranDone.Load() != 1 {
		t.Error("the hook ran before the context was done")
	}
	if removed.Load() != 0 {
		t.Error("a removed hook ran")
	}
	if r.RemoveCancelHook(b) {
		t.Error("removing a hook that ran: true, want false")
	}
	late := make(chan struct{})
	if tok := r.AddCancelHook(func() { close(late) }); r.RemoveCancelHook(tok) {
		t.Error("removing a hook added after the end: true, want false")
	}
	select {
	case <-late:
	case <-time.After(5 * time.Second):
		t.Fatal("a hook added to a done context never ran")
	}
	if got := r.Value(plainKey{}); got != "base" {
		t.Errorf("Value(plainKey) = %v, want the parent's", got)
	}
	if got := r.Value(hooksKey{}); got != r {
		t.Errorf("Value(a WantsCancelHooks key) = %v, want the context", got)
	}
}

// BaseContext ending (a hard stop) runs the hooks of a busy connection.
func TestReqCtxHooksRunWhenBaseEnds(t *testing.T) {
	base, cancel := context.WithCancel(context.Background())
	r := newReqCtx(base)
	defer r.end()
	ran := make(chan error, 1)
	r.AddCancelHook(func() { ran <- r.Err() })
	cancel()
	select {
	case err := <-ran:
		if err == nil {
			t.Error("the hook ran before the context was done")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hook did not run when BaseContext ended")
	}
}

// Adding and removing a hook allocates nothing once the context has its
// watcher and its slice.
func TestReqCtxHooksAllocateNothing(t *testing.T) {
	r := newReqCtx(context.Background())
	defer r.end()
	f := func() {}
	r.RemoveCancelHook(r.AddCancelHook(f))
	if n := testing.AllocsPerRun(100, func() { r.RemoveCancelHook(r.AddCancelHook(f)) }); n != 0 {
		t.Errorf("a hook costs %.1f allocations, want 0", n)
	}
}
