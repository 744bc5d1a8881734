package link

import (
	"bufio"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// paho reads each packet's fixed header a byte at a time: on a plain TCP
// socket that is a read system call per byte, three for every PUBACK a
// draining outbox or a relay receives. A TLS connection reads whole
// records into its own buffer, so only plain TCP needs one of ours.

// dialBuffered is paho's own dial for mqtt:// and tcp:// (its dialer, with
// the connect timeout, through a proxy from the environment, as paho does),
// with reads buffered. Other schemes keep paho's dial.
func dialBuffered(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: 30 * time.Second}
	}
	conn, err := proxy.FromEnvironmentUsing(d).Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReader(conn)}, nil
}

// plainTCP reports whether paho would dial broker as a plain TCP socket.
func plainTCP(broker string) bool {
	u, err := url.Parse(broker)
	return err == nil && (u.Scheme == "mqtt" || u.Scheme == "tcp")
}

// bufferedConn reads through a buffer. paho reads from one goroutine at
// a time, so the buffer needs no lock; deadlines and writes are the
// socket's.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
