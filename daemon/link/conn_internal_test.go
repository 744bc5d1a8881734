package link

import (
	"net"
	"net/url"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestPlainTCP(t *testing.T) {
	for broker, want := range map[string]bool{
		"tcp://127.0.0.1:1883": true, "mqtt://broker:1883": true,
		"ssl://broker:8883": false, "tls://broker:8883": false, "mqtts://broker:8883": false,
		"ws://broker:80/mqtt": false, "wss://broker/mqtt": false, "unix:///run/mosquitto.sock": false, "%zz": false,
	} {
		if got := plainTCP(broker); got != want {
			t.Errorf("plainTCP(%q) = %v, want %v", broker, got, want)
		}
	}
}

// TestDialBuffered: a packet's bytes, written at once, are read from the
// socket once however paho asks for them.
func TestDialBuffered(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte{0x40, 0x02, 0x00, 0x07}) // a PUBACK
		var b [1]byte
		_, _ = c.Read(b[:]) // until the client closes
	}()
	conn, err := dialBuffered(&url.URL{Scheme: "tcp", Host: ln.Addr().String()}, *paho.NewClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bc := conn.(*bufferedConn)
	time.Sleep(50 * time.Millisecond) // the 4 bytes are in the socket
	var got []byte
	for len(got) < 4 {
		var b [1]byte
		n, err := conn.Read(b[:])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b[:n]...)
		if len(got) == 1 && bc.r.Buffered() != 3 {
			t.Fatalf("after the first byte %d buffered, want the other 3", bc.r.Buffered())
		}
	}
	if string(got) != "\x40\x02\x00\x07" {
		t.Fatalf("read %x", got)
	}
}
