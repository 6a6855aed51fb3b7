//go:build linux

package netpoll

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller is one epoll instance with its waiting goroutine and worker pool.
type Poller struct {
	epfd   int
	wakefd int // eventfd that wakes epoll_wait on Close

	mu     sync.RWMutex // guards descs, and epfd against Close
	descs  []*Desc      // by file descriptor
	closed bool

	gen     atomic.Uint32
	work    chan *Desc
	wg      sync.WaitGroup
	pending atomic.Int64 // handlers queued or running (for tests and metrics)
}

// New starts a Poller with workers handler goroutines.
func New(workers int) (*Poller, error) {
	if workers < 1 {
		workers = 1
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, err
	}
	p := &Poller{epfd: epfd, wakefd: wakefd, work: make(chan *Desc, 4096)}
	p.wg.Add(1 + workers)
	go p.wait()
	for i := 0; i < workers; i++ {
		go p.worker()
	}
	return p, nil
}

func (p *Poller) wait() {
	defer p.wg.Done()
	defer close(p.work)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		p.mu.RLock()
		closed := p.closed
		for i := 0; i < n && !closed; i++ {
			ev := &events[i]
			fd := int(ev.Fd)
			if fd == p.wakefd || fd < 0 || fd >= len(p.descs) {
				continue
			}
			d := p.descs[fd]
			if d == nil || d.gen != uint32(ev.Pad) {
				continue // closed since, or the descriptor was reused
			}
			p.pending.Add(1)
			p.mu.RUnlock()
			p.work <- d // blocks while every worker is busy: back-pressure
			p.mu.RLock()
			closed = p.closed
		}
		p.mu.RUnlock()
		if closed {
			return
		}
	}
}

func (p *Poller) worker() {
	defer p.wg.Done()
	for d := range p.work {
		d.h.OnReadable()
		p.pending.Add(-1)
	}
}

// Register adds conn (a *net.TCPConn or another syscall.Conn) and arms it: h runs
// once conn is readable. d is filled in; keep it where it is until Unregister.
func (p *Poller) Register(d *Desc, conn syscall.Conn, h Handler) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return ErrUnsupported
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil || fd < 0 {
		return ErrUnsupported
	}
	*d = Desc{p: p, rc: rc, h: h, fd: int32(fd), gen: p.gen.Add(1)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if fd >= len(p.descs) {
		n := max(2*len(p.descs), fd+1, 1024)
		nd := make([]*Desc, n)
		copy(nd, p.descs)
		p.descs = nd
	}
	p.descs[fd] = d
	p.mu.Unlock()
	if err := d.ctl(unix.EPOLL_CTL_ADD); err != nil {
		p.Unregister(d)
		return err
	}
	return nil
}

// Unregister forgets d (see Poller.Unregister); a no-op for a Desc never
// registered.
func (d *Desc) Unregister() {
	if d.p != nil {
		d.p.Unregister(d)
	}
}

// Rearm asks for the next readiness report of d. It fails once the connection is
// closed (nothing to do then).
func (d *Desc) Rearm() error { return d.ctl(unix.EPOLL_CTL_MOD) }

func (d *Desc) ctl(op int) error {
	p := d.p
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: d.fd, Pad: int32(d.gen)}
	var cerr error
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	err := d.rc.Control(func(fd uintptr) { cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev) })
	if err != nil {
		return err
	}
	return cerr
}

// Unregister forgets d: no handler runs for it after this returns, except one that
// is already running or queued. Call it when the connection is closed (closing the
// socket also removes it from the epoll set); it is idempotent.
func (p *Poller) Unregister(d *Desc) {
	if d.p == nil {
		return
	}
	p.mu.Lock()
	if int(d.fd) < len(p.descs) && p.descs[d.fd] == d {
		p.descs[d.fd] = nil
	}
	p.mu.Unlock()
}

// Read reads what is available into b without blocking: ErrWouldBlock when nothing
// is, io.EOF when the peer closed.
func (d *Desc) Read(b []byte) (int, error) {
	var n int
	var rerr error
	err := d.rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), b)
		return true
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		if rerr == unix.EAGAIN || rerr == unix.EINTR {
			return 0, ErrWouldBlock
		}
		return 0, rerr
	}
	if n == 0 && len(b) > 0 {
		return 0, eof
	}
	return n, nil
}

// Pending reports the handlers queued or running.
func (p *Poller) Pending() int { return int(p.pending.Load()) }

// Close stops the poller: the epoll goroutine and the workers exit (a handler
// already running finishes first). Registered connections stay open but are not
// reported any more. Idempotent.
func (p *Poller) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.descs = nil
	p.mu.Unlock()
	var one = [8]byte{1}
	_, _ = unix.Write(p.wakefd, one[:])
	p.wg.Wait()
	_ = unix.Close(p.epfd)
	_ = unix.Close(p.wakefd)
}
