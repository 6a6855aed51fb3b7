// Package netpoll tells when idle connections become readable, so that an idle
// connection needs no goroutine parked in Read (whose stack, ~4 KiB, dominated the
// edge's memory per idle connection).
//
// One Poller owns an epoll instance and one goroutine blocked in epoll_wait. Each
// connection is registered level-triggered and one-shot (EPOLLIN|EPOLLRDHUP|
// EPOLLONESHOT): when it becomes readable (or hangs up), its Handler runs on one of a
// fixed pool of worker goroutines, and the connection is not reported again until
// the handler re-arms it (Desc.Rearm). So at most one worker handles a connection at a
// time, a handler may stop reading whenever it likes (level-triggered: bytes left in
// the socket report it again at once after Rearm), and a connection that floods only
// occupies one worker for one bounded turn.
//
// The connection stays an ordinary *net.TCPConn (writes, deadlines and Close go
// through Go's runtime poller as before). Every operation on the file descriptor
// (epoll_ctl, reads) goes through syscall.RawConn, which holds a reference on the
// descriptor: a connection closed concurrently makes the call fail instead of
// touching a descriptor number the kernel may already have given to a new
// connection. Closing the socket removes it from the epoll set; events already
// collected for it carry a generation number and are dropped.
package netpoll

import (
	"errors"
	"io"
	"syscall"
)

// Handler is called on a worker goroutine when its connection is readable or hung
// up. It must not block on anything slow (it reads with Desc.Read, which never
// blocks) and must call Desc.Rearm when it wants the next readiness report.
type Handler interface {
	OnReadable()
}

// Errors.
var (
	// ErrClosed: the Poller is closed.
	ErrClosed = errors.New("netpoll: poller closed")
	// ErrUnsupported: no poller on this platform, or a connection without a file
	// descriptor (the caller falls back to a reading goroutine).
	ErrUnsupported = errors.New("netpoll: unsupported")
	// ErrWouldBlock: Read found no byte to read.
	ErrWouldBlock = errors.New("netpoll: would block")
)

// Desc is one registered connection. Embed it (by value) in the connection's
// state: Register fills it. Its methods are safe from any goroutine.
type Desc struct {
	p   *Poller
	rc  syscall.RawConn
	h   Handler
	fd  int32
	gen uint32
}

var eof = io.EOF
