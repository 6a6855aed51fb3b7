package edge

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listen binds addr, with SO_REUSEPORT when reusePort is set so that several edge
// processes can share one port (the kernel spreads new connections between them).
func listen(addr string, reusePort bool) (net.Listener, error) {
	lc := net.ListenConfig{}
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	return lc.Listen(context.Background(), "tcp", addr)
}
