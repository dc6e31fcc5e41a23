//go:build unix

package webhook

import "syscall"

// open reports whether an idle connection can carry a request: the
// receiver has neither closed it (a keep-alive timeout on their side) nor
// sent anything unasked. It peeks at the socket without waiting, so a
// connection closed while idle is dropped here instead of failing the
// next delivery.
func (c *conn) open() bool {
	var b [1]byte
	ok := false
	err := c.tcp.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait for the socket to become readable
	})
	return err == nil && ok
}
