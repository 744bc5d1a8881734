package broker

import (
	"log/slog"
	"net"
	"sync"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// tcpListener is a plain TCP listener for mochi that, unlike mochi's
// listeners.TCP, owns the goroutines it starts: Close returns only when
// every connection it accepted is closed and handled.
//
// mochi counts clients in Listeners.ClientsWg with an Add inside the
// connection's goroutine, which races with the Wait in Server.Close (the
// race detector reports it whenever a connection arrives as the broker
// closes). Once this listener's Close has returned, no such goroutine is
// left, so that Wait has nothing to race with.
type tcpListener struct {
	id   string
	addr string

	ln     net.Listener
	served chan struct{} // closed when Serve's accept loop returned
	wg     sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	serving bool
	closed  bool
}

var _ listeners.Listener = (*tcpListener)(nil)

func newTCPListener(id, addr string) *tcpListener {
	return &tcpListener{id: id, addr: addr, served: make(chan struct{}), conns: map[net.Conn]struct{}{}}
}

func (l *tcpListener) ID() string       { return l.id }
func (l *tcpListener) Protocol() string { return "tcp" }

// Address returns the bound address once Init succeeded.
func (l *tcpListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Init binds the address; mochi calls it from AddListener.
func (l *tcpListener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// Serve accepts connections until Close and hands each to establish in
// a goroutine of its own.
func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed || l.serving {
		l.mu.Unlock()
		return
	}
	l.serving = true
	l.mu.Unlock()
	defer close(l.served)
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			conn.Close()
			return
		}
		l.conns[conn] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			// establish returns when the client is gone; its error is the
			// reason the client left, nothing the broker must act on.
			_ = establish(l.id, conn)
			conn.Close()
			l.mu.Lock()
			delete(l.conns, conn)
			l.mu.Unlock()
		}()
	}
}

// Close stops accepting, lets mochi disconnect its clients through
// closeClients, closes whatever connections are left (including those
// still before CONNECT, which mochi does not know yet) and waits for
// their goroutines. It may be called more than once.
func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	serving := l.serving
	l.mu.Unlock()

	if l.ln != nil {
		_ = l.ln.Close()
	}
	if serving {
		<-l.served
	}
	closeClients(l.id)
	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}
