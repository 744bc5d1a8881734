package guard

import (
	"net"
	"sync"
)

// ReasonConnections is the refusal reason of a connection over the cap.
const ReasonConnections = "connection_limit"

// Listener is a net.Listener that holds at most a fixed number of
// connections open at once. A connection accepted beyond that is reset at
// once and counted, so the sockets (file descriptors) a server holds stay
// bounded whatever a client does; the server's timeouts bound how long
// each slot is held.
type Listener struct {
	net.Listener
	sem     chan struct{}
	refused func()
}

// Listen caps l at n open connections (at least 1); refused, if not nil,
// is called for each connection turned away.
func Listen(l net.Listener, n int, refused func()) *Listener {
	if refused == nil {
		refused = func() {}
	}
	return &Listener{Listener: l, sem: make(chan struct{}, max(n, 1)), refused: refused}
}

// Accept returns the next connection within the cap; connections over it
// are closed and counted without returning.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &conn{Conn: c, release: func() { <-l.sem }}, nil
		default:
		}
		if tc, ok := c.(*net.TCPConn); ok {
			// A reset, not a FIN: no TIME_WAIT left behind, and the
			// client learns at once.
			_ = tc.SetLinger(0)
		}
		_ = c.Close()
		l.refused()
	}
}

// Open is the number of connections open now.
func (l *Listener) Open() int { return len(l.sem) }

// conn frees its slot once, however often it is closed.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
