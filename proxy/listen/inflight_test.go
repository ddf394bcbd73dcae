package listen

import (
	"context"
	"testing"
	"time"
)

func TestInFlightWaitsForEnd(t *testing.T) {
	var g InFlight
	g.Wait(context.Background()) // nothing in flight: returns at once
	g.Begin()
	g.Begin()
	done := make(chan struct{})
	go func() { g.Wait(context.Background()); close(done) }()
	g.End()
	select {
	case <-done:
		t.Fatal("Wait returned with one handler still running")
	case <-time.After(50 * time.Millisecond):
	}
	g.End()
	<-done
	g.Begin() // a new spell after the waiter left needs a new channel
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.Wait(ctx) // ends with ctx although one is in flight
	g.End()
}
