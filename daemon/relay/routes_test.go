package relay

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/wire"
)

func TestRoutes(t *testing.T) {
	var logs bytes.Buffer
	r := newRoutes(slog.New(slog.NewTextHandler(&logs, nil)))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := func(online bool, at time.Time, ms ...wire.Machine) *wire.State {
		return &wire.State{Online: online, At: at, Machines: ms}
	}
	r.update("site-a", st(true, t0, wire.Machine{MachineID: 1, HwSerial: "0434334921100366"}))

	cases := []struct {
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, ok := r.lookup(c.machine, c.serial)
			if got := map[bool]string{true: n.ID}[ok]; got != c.want {
				t.Fatalf("lookup(%d, %q) = %q, want %q", c.machine, c.serial, got, c.want)
			}
		})
	}

	// The will: known at once to be offline.
	r.update("site-a", st(false, t0.Add(time.Minute), wire.Machine{MachineID: 1, HwSerial: "0434334921100366"}))
	if n, ok := r.lookup(1, ""); !ok || n.Online {
		t.Fatalf("after the will: %+v %v", n, ok)
	}

	// A newer birth elsewhere claims the same terminal: it wins, and the
	// conflict is logged. An older one does not.
	r.update("site-b", st(true, t0.Add(2*time.Minute), wire.Machine{MachineID: 1}))
	if n, _ := r.lookup(1, ""); n.ID != "site-b" {
		t.Fatalf("newest birth did not win: %s", n.ID)
	}
	if !strings.Contains(logs.String(), "two site controllers claim one terminal") {
		t.Fatal("conflict not logged")
	}
	r.update("site-c", st(true, t0, wire.Machine{MachineID: 1}))
	if n, _ := r.lookup(1, ""); n.ID != "site-b" {
		t.Fatalf("an older birth took the terminal: %s", n.ID)
	}

	// A terminal moved from site-b to site-d; site-b's box is then shut
	// down, its offline state newest of all: the online node keeps it.
	r.update("site-d", st(true, t0.Add(3*time.Minute), wire.Machine{MachineID: 1}))
	r.update("site-b", st(false, t0.Add(4*time.Minute), wire.Machine{MachineID: 1}))
	if n, _ := r.lookup(1, ""); n.ID != "site-d" {
		t.Fatalf("an offline node took the terminal back: %s", n.ID)
	}
	r.update("site-d", nil)

	// A cleared retained state forgets the node.
	r.update("site-b", nil)
	if n, ok := r.lookup(1, ""); ok && n.ID == "site-b" {
		t.Fatal("forgotten node still routed")
	}
}
