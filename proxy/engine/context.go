package engine

import (
	"context"
	"sync"
)

// reqCtx is the context of a connection's requests (conn.reqContext): a
// context.WithCancel of BaseContext that also runs cancellation hooks
// without allocating per hook. The native transport registers one per
// upstream exchange (proxy/transport's CancelHooks); context.AfterFunc
// would cost its own context and stop func on every request.
type reqCtx struct {
	context.Context
	cancel context.CancelFunc

	mu        sync.Mutex // guards the following fields
	hooks     []hook
	next      uint64      // the last token handed out
	fired     bool        // the hooks have been taken to run
	stopWatch func() bool // the AfterFunc that fires the hooks when BaseContext ends; nil until the first hook
}

type hook struct {
	token uint64
	f     func()
}

// Value answers a key with a WantsCancelHooks method (proxy/transport's
// CancelHooksKey) with the context itself, so a transport finds the hooks
// under the value contexts a handler adds.
func (r *reqCtx) Value(key any) any {
	if _, ok := key.(interface{ WantsCancelHooks() }); ok {
		return r
	}
	return r.Context.Value(key)
}

func newReqCtx(parent context.Context) *reqCtx {
	ctx, cancel := context.WithCancel(parent)
	return &reqCtx{Context: ctx, cancel: cancel}
}

// AddCancelHook arranges for f to be called once the context is done, as
// context.AfterFunc(ctx, f) does, and returns the token that removes it.
// f runs on the goroutine that ends the context, so it must not block; on
// a context already done it runs at once, on its own goroutine.
func (r *reqCtx) AddCancelHook(f func()) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fired {
		go f()
		return 0
	}
	if r.stopWatch == nil {
		// One watcher per busy spell, not per hook: BaseContext's end
		// (a hard stop) reaches the hooks through it.
		r.stopWatch = context.AfterFunc(r.Context, r.fire)
	}
	r.next++
	r.hooks = append(r.hooks, hook{token: r.next, f: f})
	return r.next
}

// RemoveCancelHook removes the hook of token, as AfterFunc's stop does:
// true when it will not run, false when it has been started already (or
// was removed before).
func (r *reqCtx) RemoveCancelHook(token uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, h := range r.hooks {
		if h.token == token {
			last := len(r.hooks) - 1
			r.hooks[i] = r.hooks[last]
			r.hooks[last] = hook{}
			r.hooks = r.hooks[:last]
			return true
		}
	}
	return false
}

// fire runs the hooks, once; the context is done by then.
func (r *reqCtx) fire() {
	r.mu.Lock()
	hooks := r.hooks
	r.hooks, r.fired = nil, true
	r.mu.Unlock()
	for _, h := range hooks {
		h.f()
	}
}

// end cancels the context and runs its hooks. The watcher is stopped
// first, so the hooks run here rather than on a goroutine the watcher
// would start; when BaseContext ended first, the watcher runs them.
func (r *reqCtx) end() {
	r.mu.Lock()
	stop := r.stopWatch
	r.mu.Unlock()
	if stop != nil && !stop() {
		r.cancel()
		return
	}
	r.cancel()
	r.fire()
}
