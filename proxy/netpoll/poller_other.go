//go:build !linux

package netpoll

import "syscall"

// poller is Linux's epoll; elsewhere nothing can be parked and callers
// keep a goroutine waiting on each idle connection.
type poller struct{}

func getPoller() (*poller, error) { return nil, ErrUnsupported }

func (p *poller) arm(*Waiter, int, bool) error { return syscall.ENOSYS }
func (p *poller) add(*Waiter)                  {}
func (p *poller) remove(*Waiter)               {}
