package relay

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/wire"
)

// Routes come from the registry (P/terminals) only; node states say who
// is online, and their claims are compared, counted and logged, never
// followed.
func TestRoutes(t *testing.T) {
	var logs bytes.Buffer
	r := newRoutes(slog.New(slog.NewTextHandler(&logs, nil)))
	claims := map[string]int{}
	r.claim = func(reason string) { claims[reason]++ }
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := func(online bool, ms ...wire.Machine) *wire.State {
		return &wire.State{Online: online, At: t0, Machines: ms}
	}
	own := func(key, node string, machine int64, serial string, at time.Time) {
		r.setTerminal(key, &wire.Terminal{Node: node, MachineID: machine, HwSerial: serial, At: at}, nil)
	}
	owner := func(machine int64, serial string) string {
		n, ok := r.lookup(machine, serial)
		if !ok {
			return ""
		}
		return n.ID
	}

	own("m1", "site-a", 1, "0434334921100366", t0)
	for _, c := range []struct {
		name    string
		machine int64
		serial  string
		want    string
	}{
		{"by machine id", 1, "", "site-a"},
		{"by serial", 0, "0434334921100366", "site-a"},
		{"serial without its leading zero", 0, "434334921100366", "site-a"},
		{"unknown machine, known serial", 99, "434334921100366", "site-a"},
		{"unknown", 99, "12", ""},
		{"zeros only", 0, "000", ""},
		{"nothing", 0, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := owner(c.machine, c.serial); got != c.want {
				t.Fatalf("lookup(%d, %q) = %q, want %q", c.machine, c.serial, got, c.want)
			}
		})
	}

	// Registered but never seen: routed, offline (commands wait at the
	// broker for its persistent session).
	if n, ok := r.lookup(1, ""); !ok || n.Online || n.ID != "site-a" {
		t.Fatalf("before any state: %+v %v", n, ok)
	}
	r.update("site-a", st(true, wire.Machine{MachineID: 1, HwSerial: "0434334921100366"}))
	if n, _ := r.lookup(1, ""); !n.Online {
		t.Fatal("the owner's birth did not make it online")
	}
	if len(claims) != 0 || logs.Len() != 0 {
		t.Fatalf("the owner's own claim was reported: %v %s", claims, logs.String())
	}

	// Another node claims the terminal (a stolen key, a copied config):
	// ignored, counted, logged once however often it repeats.
	for range 3 {
		r.update("site-rogue", st(true, wire.Machine{MachineID: 1}, wire.Machine{MachineID: 77}))
	}
	if got := owner(1, ""); got != "site-a" {
		t.Fatalf("a claim took the terminal: %s", got)
	}
	if owner(77, "") != "" {
		t.Fatal("an unregistered claim was routed")
	}
	if claims[claimOtherOwner] != 3 || claims[claimUnregistered] != 3 {
		t.Fatalf("claims counted %v", claims)
	}
	if n := strings.Count(logs.String(), "ignoring a site controller's claim"); n != 1 || !strings.Contains(logs.String(), "owned by site-a") {
		t.Fatalf("%d log lines:\n%s", n, logs.String())
	}

	// The operator moves the terminal: one retained message.
	own("m1", "site-b", 1, "0434334921100366", t0.Add(time.Hour))
	if got := owner(0, "434334921100366"); got != "site-b" {
		t.Fatalf("after the move: %s", got)
	}

	// Two entries for one terminal (a serial key left behind): the
	// newest counts, and removing it gives the terminal back to the
	// other.
	own("s0434334921100366", "site-c", 0, "0434334921100366", t0.Add(2*time.Hour))
	if !strings.Contains(logs.String(), "two entries of P/terminals name one terminal") {
		t.Fatal("double entry not logged")
	}
	if got := owner(0, "0434334921100366"); got != "site-c" {
		t.Fatalf("newest entry did not win: %s", got)
	}
	if got := owner(1, ""); got != "site-b" {
		t.Fatalf("machine id lookup: %s", got)
	}
	r.setTerminal("s0434334921100366", nil, nil)
	if got := owner(0, "0434334921100366"); got != "site-b" {
		t.Fatalf("after removing the newest: %s", got)
	}

	// A cleared registry entry routes nothing; a cleared state forgets
	// only the node's online status.
	r.setTerminal("m1", nil, nil)
	if got := owner(1, "0434334921100366"); got != "" {
		t.Fatalf("removed terminal still routed to %s", got)
	}
	if nodes, terms := r.counts(); nodes != 2 || terms != 0 {
		t.Fatalf("counts %d nodes, %d terminals", nodes, terms)
	}
	r.update("site-rogue", nil)
	if nodes, _ := r.counts(); nodes != 1 {
		t.Fatalf("forgotten node still counted: %d", nodes)
	}
	// A node whose state says two daemons use its id is counted while
	// it says so.
	for _, c := range []struct {
		conflict bool
		want     int
	}{{true, 1}, {false, 0}} {
		r.update("site-a", &wire.State{Online: true, At: t0, Instance: "9f86d081884c7d65", NodeIDConflict: c.conflict})
		if _, got := r.nodeStates(); got != c.want {
			t.Fatalf("node_id_conflict %v: %d nodes in conflict, want %d", c.conflict, got, c.want)
		}
	}
	// Online is the node's own word, counted as it changes.
	online, _ := r.nodeStates()
	r.update("site-a", &wire.State{Online: false, At: t0.Add(time.Second), Instance: "9f86d081884c7d65"})
	if got, _ := r.nodeStates(); online < 1 || got != online-1 {
		t.Fatalf("online %d after site-a went offline, %d before", got, online)
	}

	// A removal is kept (a tombstone): an older entry arriving after it
	// (a replica re-seeding what it held) is not applied, and the held
	// removal is handed back to be published again.
	r.setTerminal("m5", &wire.Terminal{Node: "site-a", MachineID: 5, At: t0}, nil)
	r.setTerminal("m5", &wire.Terminal{MachineID: 5, Removed: true, At: t0.Add(time.Hour)}, nil)
	if owner(5, "") != "" {
		t.Fatal("removed terminal routed")
	}
	if held := r.setTerminal("m5", &wire.Terminal{Node: "site-a", MachineID: 5, At: t0}, nil); held == nil || !held.Removed || owner(5, "") != "" {
		t.Fatalf("an older entry replaced a newer removal: held %+v, owner %q", held, owner(5, ""))
	}

	// What a connection did not bring is what the broker lost.
	connA, connB := new(int), new(int)
	r.setTerminal("m6", &wire.Terminal{Node: "site-a", MachineID: 6, At: t0}, connA)
	r.setTerminal("m7", &wire.Terminal{Node: "site-a", MachineID: 7, At: t0}, connA)
	r.setTerminal("m6", &wire.Terminal{Node: "site-a", MachineID: 6, At: t0}, connB)
	lost := r.unseen(connB)
	if _, ok := lost["m7"]; !ok {
		t.Fatalf("unseen(connB) = %v, want m7 among them", lost)
	}
	if _, ok := lost["m6"]; ok {
		t.Fatal("an entry the connection brought is listed as lost")
	}
}

// TestRoutesIndexAgainstScan: after every registry change of a random
// run (claims, moves, re-claims, stale entries, removals, cleared keys,
// two entries for one terminal), owner answers what a scan of the
// registry entries answers: by machine id first, then by serial, the
// newest entry.
func TestRoutesIndexAgainstScan(t *testing.T) {
	rnd := rand.New(rand.NewPCG(15, 4))
	r := newRoutes(slog.New(slog.DiscardHandler))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	serials := []string{"", "0434334921100366", "434334921100366", "04AB", "4ab", "17"}
	scan := func(machine int64, serial string) (string, bool) {
		newest := func(match func(wire.Terminal) bool) (string, bool) {
			best, found := wire.Terminal{}, false
			for _, tm := range r.terms {
				if !tm.Removed && match(tm) && (!found || tm.At.After(best.At)) {
					best, found = tm, true
				}
			}
			return best.Node, found
		}
		if machine > 0 {
			if n, ok := newest(func(tm wire.Terminal) bool { return tm.MachineID == machine }); ok {
				return n, true
			}
		}
		if s := normSerial(serial); s != "" {
			return newest(func(tm wire.Terminal) bool { return normSerial(tm.HwSerial) == s })
		}
		return "", false
	}
	for step := range 4000 {
		key := fmt.Sprintf("k%d", rnd.IntN(12))
		switch rnd.IntN(6) {
		case 0:
			r.setTerminal(key, nil, nil)
		default:
			// Distinct times: the newest is never a tie.
			at := t0.Add(time.Duration(rnd.IntN(1_000_000)*4000+step) * time.Nanosecond)
			r.setTerminal(key, &wire.Terminal{Node: fmt.Sprintf("site-%d", rnd.IntN(5)), MachineID: int64(rnd.IntN(5)),
				HwSerial: serials[rnd.IntN(len(serials))], Removed: rnd.IntN(8) == 0, At: at}, nil)
		}
		for machine := range int64(5) {
			for _, serial := range serials {
				got, gotOK := r.ownerOf(machine, serial)
				want, wantOK := scan(machine, serial)
				if got != want || gotOK != wantOK {
					t.Fatalf("step %d: owner(%d, %q) = %q %v, a scan says %q %v", step, machine, serial, got, gotOK, want, wantOK)
				}
			}
		}
	}
}
