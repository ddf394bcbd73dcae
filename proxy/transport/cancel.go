package transport

import "context"

// CancelHooks is a request context that runs a hook when it ends without
// allocating, where context.AfterFunc costs a context and a stop func per
// exchange. The native engine's request context is one; with any other
// context an exchange uses AfterFunc.
type CancelHooks interface {
	Done() <-chan struct{}
	// AddCancelHook arranges for f to be called once the context is done,
	// as context.AfterFunc does, and returns the token that removes it.
	// f must not block.
	AddCancelHook(f func()) (token uint64)
	// RemoveCancelHook removes the hook of token, as AfterFunc's stop
	// does: true when it will not run, false when it has been started.
	RemoveCancelHook(token uint64) bool
}

// CancelHooksKey is the context key a CancelHooks context answers with
// itself, so that it is found under the value contexts a handler wraps it
// in (request state, spans). The server's context knows the key by its
// method, not its type: ctx.Value(k) returns the context when k has
// WantsCancelHooks, so the server imports nothing of the transport's.
type CancelHooksKey struct{}

// WantsCancelHooks marks the key.
func (CancelHooksKey) WantsCancelHooks() {}

// cancelHooks returns ctx's hooks when they end exactly when ctx does: a
// context in between with a cancellation of its own (a per-try timeout)
// has its own Done channel, and the exchange falls back to AfterFunc.
func cancelHooks(ctx context.Context) CancelHooks {
	h, ok := ctx.(CancelHooks)
	if !ok {
		h, ok = ctx.Value(CancelHooksKey{}).(CancelHooks)
	}
	if !ok || h.Done() != ctx.Done() {
		return nil
	}
	return h
}

// watch arranges for the connection's wake hook to run when the request's
// context ends.
func (ex *exchange) watch() {
	if h := cancelHooks(ex.ctx); h != nil {
		ex.hooks, ex.token = h, h.AddCancelHook(ex.pc.wake)
		return
	}
	ex.stop = context.AfterFunc(ex.ctx, ex.pc.wake)
}

// unwatch stops the wake hook: false when it has been started (the
// connection's deadline is set to wake it), or was stopped before.
func (ex *exchange) unwatch() bool {
	if ex.hooks != nil {
		return ex.hooks.RemoveCancelHook(ex.token)
	}
	return ex.stop()
}
