// Command floorproc is the bare process sitelink-bench measures `sitelink
// run` against: a Go program that tells the service manager READY=1 as
// soon as it runs, then connects one paho client to the broker named by
// its argument, subscribes to one topic, says STATUS=connected and waits
// for SIGTERM. Its start-up is the floor of a cold start, its resident
// memory the floor of an idle daemon. It is built as sitelink is, in the
// same run.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	paho "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: floorproc BROKER-URL")
		os.Exit(2)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(os.Args[1]).
		SetClientID(fmt.Sprintf("bench-floor-%d", os.Getpid())).SetCleanSession(true))
	if t := c.Connect(); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		fmt.Fprintln(os.Stderr, "floorproc: connect:", t.Error())
		os.Exit(1)
	}
	if t := c.Subscribe("bench/floor/+", 1, func(paho.Client, paho.Message) {}); !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		fmt.Fprintln(os.Stderr, "floorproc: subscribe:", t.Error())
		os.Exit(1)
	}
	_, _ = daemon.SdNotify(false, "STATUS=connected")
	<-term
	c.Disconnect(100)
}
