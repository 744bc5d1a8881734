package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

// The fleet every figure of the group is measured with: terminal i is
// machine 70000000+i with a 16-digit serial, owned by node site-i.

func relayMachine(i int) int64 { return 70000000 + int64(i) }
func relaySerial(i int) string { return fmt.Sprintf("04%014d", i) }
func relayNode(i int) string   { return "site-" + strconv.Itoa(i) }
func relayClientID(what string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "bench-" + what + "-" + hex.EncodeToString(b[:])
}

// relayConnect connects a bare paho client as the floors and the fake
// fleet use it: clean session, paho's defaults otherwise.
func relayConnect(url, what string, orderMatters bool) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(url).SetClientID(relayClientID(what)).
		SetCleanSession(true).SetAutoReconnect(false).SetOrderMatters(orderMatters).
		SetConnectTimeout(5 * time.Second).SetWriteTimeout(10 * time.Second)
	c := paho.NewClient(o)
	if err := relayWait(c.Connect(), 10*time.Second); err != nil {
		return nil, fmt.Errorf("connect %s: %w", what, err)
	}
	return c, nil
}

func relayWait(t paho.Token, d time.Duration) error {
	if !t.WaitTimeout(d) {
		return errors.New("timed out")
	}
	return t.Error()
}

// relayFleet is a registry of n terminals, one per node, under prefix:
// the retained P/terminals/m<id> entries the fleet's operator writes
// (wire.TerminalMessage, as `sitelink fleet terminals` does) and each
// node's retained birth (online), as its controller publishes it.
type relayFleet struct {
	prefix string
	n      int
}

func (f relayFleet) messages(i int, at time.Time) (topics [2]string, payloads [2][]byte, err error) {
	node := relayNode(i)
	topics[0], payloads[0], err = wire.TerminalMessage(f.prefix, wire.Terminal{Node: node, MachineID: relayMachine(i), HwSerial: relaySerial(i), At: at})
	if err != nil {
		return
	}
	topics[1] = wire.Topics{Prefix: f.prefix, Node: node}.State()
	payloads[1], err = json.Marshal(wire.State{Online: true, Epoch: 1, Version: "bench", At: at,
		Machines: []wire.Machine{{MachineID: relayMachine(i), HwSerial: relaySerial(i)}}, Stations: []string{"5"}})
	return
}

// publish writes the registry and the births, retained, QoS 1, with a
// window of unacknowledged messages.
func (f relayFleet) publish(ctx context.Context, url string) error {
	at := time.Now().UTC()
	return f.each(ctx, url, func(i int) ([2]string, [2][]byte, error) { return f.messages(i, at) })
}

// clear removes what publish wrote (empty retained messages), so that
// the broker goes on to the next group as it came.
func (f relayFleet) clear(ctx context.Context, url string) error {
	return f.each(ctx, url, func(i int) ([2]string, [2][]byte, error) {
		t, _, err := f.messages(i, time.Time{})
		return t, [2][]byte{}, err
	})
}

func (f relayFleet) each(ctx context.Context, url string, msg func(int) ([2]string, [2][]byte, error)) error {
	c, err := relayConnect(url, "registry", true)
	if err != nil {
		return err
	}
	defer c.Disconnect(100)
	const window = 2000
	var pending []paho.Token
	for i := range f.n {
		if err := ctx.Err(); err != nil {
			return err
		}
		topics, payloads, err := msg(i)
		if err != nil {
			return err
		}
		for j := range topics {
			pending = append(pending, c.Publish(topics[j], 1, true, payloads[j]))
		}
		if len(pending) >= window {
			for _, t := range pending[:window/2] {
				if err := relayWait(t, 30*time.Second); err != nil {
					return fmt.Errorf("registry publish: %w", err)
				}
			}
			pending = pending[window/2:]
		}
	}
	for _, t := range pending {
		if err := relayWait(t, 30*time.Second); err != nil {
			return fmt.Errorf("registry publish: %w", err)
		}
	}
	return nil
}

// learnBare is the floor of a replica's start-up: a bare paho client
// connects, subscribes to the registry and the births, and decodes every
// retained message (wire.DecodeTerminal, wire.DecodeState), from before
// it connects to the last message.
func (f relayFleet) learnBare(ctx context.Context, url string) (time.Duration, error) {
	var got, bad atomic.Int64
	done := make(chan struct{})
	want := int64(2 * f.n)
	count := func(ok bool) {
		if !ok {
			bad.Add(1)
		}
		if got.Add(1) == want {
			close(done)
		}
	}
	start := time.Now()
	c, err := relayConnect(url, "learn", true)
	if err != nil {
		return 0, err
	}
	defer c.Disconnect(100)
	t := c.SubscribeMultiple(map[string]byte{wire.AllTerminals(f.prefix): 1, wire.AllNodes(f.prefix).State(): 1}, func(_ paho.Client, m paho.Message) {
		if _, ok := wire.ParseTerminalTopic(f.prefix, m.Topic()); ok {
			_, err := wire.DecodeTerminal(m.Payload())
			count(err == nil)
			return
		}
		_, err := wire.DecodeState(m.Payload())
		count(err == nil)
	})
	if err := relayWait(t, 10*time.Second); err != nil {
		return 0, fmt.Errorf("subscribe: %w", err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return 0, fmt.Errorf("bare subscriber: %d of %d retained messages", got.Load(), want)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	d := time.Since(start)
	if bad.Load() > 0 {
		return 0, fmt.Errorf("bare subscriber: %d unreadable retained messages", bad.Load())
	}
	return d, nil
}

// relayResponder stands in for every site controller: one bare paho
// client subscribed to all nodes' stop commands, of every prefix of the
// group, answering each at once with the site's Approved (the edge's
// answer to a StopCallback that stopped its session), on the command's
// reply_to. The floor's commands and sitelink's get the same work.
type relayResponder struct {
	c          paho.Client
	unreadable atomic.Int64
}

func relayStartResponder(url string) (*relayResponder, error) {
	r := &relayResponder{}
	c, err := relayConnect(url, "edges", false)
	if err != nil {
		return nil, err
	}
	r.c = c
	zero := 0
	t := c.Subscribe("+/v1/nodes/+/commands/"+wire.CommandStop, 1, func(c paho.Client, m paho.Message) {
		cmd, err := wire.DecodeCommand(m.Payload(), wire.CommandStop)
		var stop struct{ SparkTransactionId, ServiceStationNumber nayax.Text }
		if err == nil {
			err = json.Unmarshal(cmd.Body, &stop)
		}
		if err != nil || cmd.ReplyTo == "" {
			r.unreadable.Add(1)
			return
		}
		rep, _ := json.Marshal(wire.Reply{ID: cmd.ID, Type: cmd.Type, Body: wire.Answer{
			SparkTransactionId: stop.SparkTransactionId.S, ServiceStationNumber: stop.ServiceStationNumber.S,
			Status: wire.Status{Verdict: "Approved", ErrorCode: &zero, ErrorDescription: "No Errors"}}})
		c.Publish(cmd.ReplyTo, 1, false, rep) // never waits in the handler
	})
	if err := relayWait(t, 10*time.Second); err != nil {
		c.Disconnect(100)
		return nil, fmt.Errorf("responder subscribe: %w", err)
	}
	return r, nil
}

func (r *relayResponder) Close() { r.c.Disconnect(100) }

// The floor is a bare HTTP→MQTT→HTTP relay: this program started again
// with relayChildEnv set, so that it runs in a process of its own as
// `sitelink relay` does. It reads the POST body, wraps it in a command
// envelope with a counter for id, publishes it QoS 1 to one node's stop
// topic, waits for the PUBACK and for the reply on its reply topic
// (matched by id), and writes the reply's body. No decoding of the
// callback, no route, no authentication, no limits, no metrics.
const (
	relayChildEnv  = "SITELINK_BENCH_CHILD"
	relayChildBare = "bare-relay"
	relayBarePfx   = "benchfloor/v1"
)

type relayBare struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	url string
}

func relayStartBare(ctx context.Context, broker, dir string) (*relayBare, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), relayChildEnv+"="+relayChildBare, "SITELINK_BENCH_BROKER="+broker)
	logf, err := os.Create(filepath.Join(dir, "bare-relay.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	relayDieWithParent(cmd)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b := &relayBare{cmd: cmd, in: in}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case addr, ok := <-line:
		if !ok {
			b.Stop()
			return nil, fmt.Errorf("bare relay did not start (see %s)", logf.Name())
		}
		b.url = "http://" + addr
	case <-time.After(20 * time.Second):
		b.Stop()
		return nil, errors.New("bare relay did not start in 20 s")
	case <-ctx.Done():
		b.Stop()
		return nil, ctx.Err()
	}
	return b, nil
}

// Stop closes the child's stdin, which ends it.
func (b *relayBare) Stop() {
	_ = b.in.Close()
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
	}
}

// relayBareChild is the floor's process; it serves until its stdin ends.
func relayBareChild() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "bare relay:", err)
		return 1
	}
	c, err := relayConnect(os.Getenv("SITELINK_BENCH_BROKER"), "bare-relay", true)
	if err != nil {
		return fail(err)
	}
	topics := wire.Topics{Prefix: relayBarePfx, Node: "floor"}
	replyTo, cmdTopic := topics.RelayReplies("bare"), topics.Command(wire.CommandStop)
	var mu sync.Mutex
	pending := map[string]chan json.RawMessage{}
	t := c.Subscribe(replyTo, 1, func(_ paho.Client, m paho.Message) {
		var rep struct {
			ID   string          `json:"id"`
			Body json.RawMessage `json:"body"`
		}
		if json.Unmarshal(m.Payload(), &rep) != nil {
			return
		}
		mu.Lock()
		ch := pending[rep.ID]
		mu.Unlock()
		if ch != nil {
			ch <- rep.Body
		}
	})
	if err := relayWait(t, 10*time.Second); err != nil {
		return fail(err)
	}
	var seq atomic.Uint64
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := strconv.FormatUint(seq.Add(1), 36)
		env, err := json.Marshal(wire.Command{ID: id, Type: wire.CommandStop, ReplyTo: replyTo, Body: body})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ch := make(chan json.RawMessage, 1)
		mu.Lock()
		pending[id] = ch
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(pending, id)
			mu.Unlock()
		}()
		if err := relayWait(c.Publish(cmdTopic, 1, false, env), 4*time.Second); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		select {
		case rep := <-ch:
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = w.Write(rep)
		case <-time.After(4 * time.Second):
			http.Error(w, "no reply", http.StatusGatewayTimeout)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println(ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it or dies
	_ = srv.Close()
	c.Disconnect(100)
	return 0
}

// relaySecrets are the files and values every relay process of the run
// shares: the fleet's card key, the callback header Nayax would send,
// dummy Nayax credentials (nothing in this group calls Nayax).
type relaySecrets struct {
	cardKey, header0File, signKey, tokenSecret string
	header                                     [2]string
}

func relayWriteSecrets(dir string) (relaySecrets, error) {
	rnd := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}
	s := relaySecrets{
		cardKey: filepath.Join(dir, "card.key"), header0File: filepath.Join(dir, "callback-auth.secret"),
		signKey: filepath.Join(dir, "nayax-sign.key"), tokenSecret: filepath.Join(dir, "nayax-token.secret"),
		header: [2]string{"X-Sitelink-Auth", rnd(32)},
	}
	for path, v := range map[string]string{s.cardKey: rnd(32), s.header0File: s.header[1], s.signKey: rnd(16), s.tokenSecret: rnd(24)} {
		if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
			return s, err
		}
	}
	return s, nil
}

// relayFreeAddr returns a loopback address with a port free right now
// (relay.listen does not take port 0: Nayax's URL must be known).
func relayFreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
