//go:build !linux

package netpoll

import "syscall"

// Poller is not available on this platform: New fails with ErrUnsupported and the
// caller keeps a reading goroutine per connection.
type Poller struct{}

// New fails with ErrUnsupported.
func New(int) (*Poller, error) { return nil, ErrUnsupported }

// Register fails with ErrUnsupported.
func (p *Poller) Register(*Desc, syscall.Conn, Handler) error { return ErrUnsupported }

// Unregister does nothing.
func (p *Poller) Unregister(*Desc) {}

// Close does nothing.
func (p *Poller) Close() {}

// Pending is 0.
func (p *Poller) Pending() int { return 0 }

// Rearm fails with ErrUnsupported.
func (d *Desc) Rearm() error { return ErrUnsupported }

// Read fails with ErrUnsupported.
func (d *Desc) Read([]byte) (int, error) { return 0, ErrUnsupported }

// Unregister does nothing.
func (d *Desc) Unregister() {}
