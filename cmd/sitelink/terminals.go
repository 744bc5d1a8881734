package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
)

const terminalsUsage = `usage:
  sitelink fleet terminals [-broker URL [-ca-file F -cert-file F -key-file F]|-config FILE] [-json]
      list who owns each terminal (P/terminals) and what the nodes claim
  sitelink fleet terminals -give NODE -machine-id ID [-hw-serial S] [-broker URL|-config FILE]
      give a terminal to NODE (also moves it from its previous owner)
  sitelink fleet terminals -give-from EDGE.yaml [-broker URL|-config FILE]
      give every terminal of an edge config to its node.id
  sitelink fleet terminals -remove -machine-id ID | -hw-serial S [-broker URL|-config FILE]
      the terminal belongs to no node: its callbacks are Declined "unknown machine"

The relay routes a terminal's callbacks only to the node these retained
messages name. Publish them with the fleet operator's identity (a cloud
certificate); site controllers cannot write them.
`

// cmdFleetTerminals reads and writes the terminal registry
// (P/terminals/+, wire.Terminal): the one source of the relay's routes.
func cmdFleetTerminals(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("fleet terminals", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, terminalsUsage) }
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "broker `URL`")
	prefix := fs.String("prefix", wire.DefaultPrefix, "topic `prefix`")
	cfgPath := fs.String("config", "", "take broker, credentials and prefix from this config `file` (the fleet operator's)")
	give := fs.String("give", "", "give the terminal to this `node`")
	giveFrom := fs.String("give-from", "", "give every terminal of this edge config `file` to its node.id")
	remove := fs.Bool("remove", false, "remove the terminal from the registry")
	machineID := fs.Int64("machine-id", 0, "the terminal's Nayax machine `id`")
	hwSerial := fs.String("hw-serial", "", "the terminal's HW `serial`")
	wait := fs.Duration("wait", 2*time.Second, "how long to collect retained messages (listing) or to see a change kept (giving, removing)")
	asJSON := fs.Bool("json", false, "print JSON")
	tlsFiles := tlsFlags(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if fs.NArg() > 0 {
			fs.Usage()
		}
		return exitCode(2)
	}
	var entries []wire.Terminal
	switch {
	case *giveFrom != "":
		edge, err := config.LoadEdge(*giveFrom)
		if err != nil {
			return fmt.Errorf("-give-from %s:\n%w", *giveFrom, err)
		}
		for _, t := range edge.Terminals {
			entries = append(entries, wire.Terminal{Node: edge.Node.ID, MachineID: t.MachineID, HwSerial: t.HwSerial})
		}
		if len(entries) == 0 {
			return fmt.Errorf("-give-from %s: no terminals", *giveFrom)
		}
	case *give != "" || *remove:
		if *give != "" && *remove {
			return errors.New("-give and -remove exclude each other")
		}
		if *machineID <= 0 && *hwSerial == "" {
			return errors.New("name the terminal: -machine-id and/or -hw-serial")
		}
		entries = []wire.Terminal{{Node: *give, MachineID: *machineID, HwSerial: *hwSerial}}
	}
	c, pfx, err := fleetConnect(*broker, *prefix, *cfgPath, *tlsFiles)
	if err != nil {
		return err
	}
	defer c.Disconnect(100)
	if entries == nil {
		return listTerminals(ctx, c, pfx, *wait, *asJSON, stdout)
	}
	// What the broker keeps is read back: a broker that denies this
	// identity the registry acknowledges the publish and drops it (MQTT
	// 3.1.1 cannot say no), and the operator must hear that.
	var mu sync.Mutex
	kept := map[string][]byte{}
	sub := c.Subscribe(wire.AllTerminals(pfx), 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		kept[m.Topic()] = append([]byte(nil), m.Payload()...)
		mu.Unlock()
	})
	if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
		return fmt.Errorf("subscribe %s: %v", wire.AllTerminals(pfx), sub.Error())
	}
	// What the registry holds now (retained, delivered on subscribe):
	// relays keep the newest entry of a key by its time, so ours must be
	// newer than what it replaces even if this machine's clock is behind;
	// and another key naming the same terminal (given once by serial,
	// once by machine id) is removed, or it would keep routing.
	time.Sleep(min(*wait/4, 500*time.Millisecond))
	mu.Lock()
	held := map[string]wire.Terminal{}
	for topic, p := range kept {
		if t, err := wire.DecodeTerminal(p); err == nil {
			held[topic] = t
		}
	}
	mu.Unlock()
	want := map[string][]byte{}
	put := func(e wire.Terminal) error {
		topic, payload, err := wire.TerminalMessage(pfx, e)
		if err != nil {
			return err
		}
		t := c.Publish(topic, 1, true, payload)
		if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
			return fmt.Errorf("publish %s: %v", topic, t.Error())
		}
		want[topic] = payload
		return nil
	}
	for _, e := range entries {
		// A removal is a retained message too (not an empty one): a relay
		// that was away learns it, and none puts the old owner back.
		e.Removed = *remove
		key := wire.TerminalTopic(pfx, wire.TerminalKey(e.MachineID, e.HwSerial))
		at := time.Now().UTC()
		var others []wire.Terminal
		for topic, h := range held {
			if !same(h, wire.Machine{MachineID: e.MachineID, HwSerial: e.HwSerial}) && topic != key {
				continue
			}
			if !h.At.Before(at) {
				at = h.At.Add(time.Millisecond)
			}
			if topic != key && !h.Removed {
				others = append(others, wire.Terminal{MachineID: h.MachineID, HwSerial: h.HwSerial, Removed: true})
			}
		}
		e.At = at
		if err := put(e); err != nil {
			return err
		}
		for _, o := range others {
			o.At = at
			if err := put(o); err != nil {
				return err
			}
		}
	}
	deadline := time.Now().Add(*wait)
	for {
		mu.Lock()
		var missing []string
		for topic, p := range want {
			if string(kept[topic]) != string(p) {
				missing = append(missing, topic)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			return fmt.Errorf("the broker did not keep %s: this identity may not write the registry (use the fleet operator's certificate on the cloud listener)", strings.Join(missing, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range entries {
		topic := wire.TerminalTopic(pfx, wire.TerminalKey(e.MachineID, e.HwSerial))
		if *remove {
			fmt.Fprintf(stdout, "removed %s\n", topic)
		} else {
			fmt.Fprintf(stdout, "%s -> %s\n", topic, e.Node)
		}
	}
	return nil
}

// listTerminals prints the registry, and for each terminal the nodes
// whose state claims it, so that a move, a forgotten entry or a rogue
// claim shows.
func listTerminals(ctx context.Context, c paho.Client, prefix string, wait time.Duration, asJSON bool, stdout io.Writer) error {
	var mu sync.Mutex
	terms := map[string]wire.Terminal{}
	states := map[string]wire.State{}
	t := c.SubscribeMultiple(map[string]byte{wire.AllTerminals(prefix): 1, wire.AllNodes(prefix).State(): 1}, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		if key, ok := wire.ParseTerminalTopic(prefix, m.Topic()); ok {
			if t, err := wire.DecodeTerminal(m.Payload()); err == nil && !t.Removed {
				terms[key] = t
			} else {
				delete(terms, key)
			}
			return
		}
		if node, kind, _, ok := wire.ParseNodeTopic(prefix, m.Topic()); ok && kind == wire.KindState {
			if st, err := wire.DecodeState(m.Payload()); err == nil {
				states[node] = st
			}
		}
	})
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("subscribe: %v", t.Error())
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	type row struct {
		Key string `json:"key"`
		wire.Terminal
		ClaimedBy []string `json:"claimed_by"`
	}
	rows := make([]row, 0, len(terms))
	registered := map[string]bool{}
	for key, t := range terms {
		r := row{Key: key, Terminal: t, ClaimedBy: []string{}}
		for node, st := range states {
			for _, m := range st.Machines {
				if same(t, m) {
					r.ClaimedBy = append(r.ClaimedBy, node)
					registered[node+"|"+wire.TerminalKey(m.MachineID, m.HwSerial)] = true
				}
			}
		}
		sort.Strings(r.ClaimedBy)
		rows = append(rows, r)
	}
	// Claims no entry covers: a terminal nobody gave this node.
	for node, st := range states {
		for _, m := range st.Machines {
			key := wire.TerminalKey(m.MachineID, m.HwSerial)
			if !registered[node+"|"+key] {
				rows = append(rows, row{Key: key, Terminal: wire.Terminal{MachineID: m.MachineID, HwSerial: m.HwSerial}, ClaimedBy: []string{node}})
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		return rows[i].Key < rows[j].Key || (rows[i].Key == rows[j].Key && rows[i].Node > rows[j].Node)
	})
	if asJSON {
		return json.NewEncoder(stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintln(tw, "KEY\tOWNER\tMACHINE\tSERIAL\tCLAIMED BY\tNOTE")
	for _, r := range rows {
		note := ""
		switch {
		case r.Node == "":
			note = "not registered: its callbacks are Declined"
		case len(r.ClaimedBy) == 0:
			note = "its owner does not list it"
		case len(r.ClaimedBy) > 1 || r.ClaimedBy[0] != r.Node:
			note = "claimed by another node: ignored"
		}
		owner := r.Node
		if owner == "" {
			owner = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", r.Key, owner, r.MachineID, r.HwSerial, joinOr(r.ClaimedBy, "-"), note)
	}
	return nil
}

// same reports whether a registry entry and a claimed machine are one
// terminal (machine id, or the serial by nayax's serial rule).
func same(t wire.Terminal, m wire.Machine) bool {
	if t.MachineID > 0 && t.MachineID == m.MachineID {
		return true
	}
	s := nayax.NormSerial(t.HwSerial)
	return s != "" && s == nayax.NormSerial(m.HwSerial)
}

func joinOr(s []string, empty string) string {
	if len(s) == 0 {
		return empty
	}
	out := s[0]
	for _, x := range s[1:] {
		out += "," + x
	}
	return out
}
