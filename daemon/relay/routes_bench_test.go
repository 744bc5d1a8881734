package relay

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/wire"
)

// BenchmarkRoutes: a callback's route lookup among n registered terminals
// against the floor of a bare map lookup, and learning n node states
// (decode + update) against the floor of decoding them alone. Both must
// stay flat as the fleet grows (issue 15: O(1) lookup, O(its terminals)
// per state message).
func BenchmarkRoutes(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		r := newRoutes(slog.New(slog.DiscardHandler))
		floor := map[int64]string{}
		states := make([][]byte, n)
		at := time.Now()
		for i := range n {
			id, m := fmt.Sprintf("site-%d", i), int64(70000000+i)
			r.setTerminal(wire.TerminalKey(m, ""), &wire.Terminal{Node: id, MachineID: m, HwSerial: fmt.Sprintf("04%014d", i), At: at}, nil)
			floor[m] = id
			states[i], _ = json.Marshal(wire.State{Online: true, Epoch: 1, At: at, Machines: []wire.Machine{{MachineID: m, HwSerial: fmt.Sprintf("04%014d", i)}}})
		}
		b.Run(fmt.Sprintf("lookup/%d", n), func(b *testing.B) {
			for i := range b.N {
				if _, ok := r.lookup(int64(70000000+i%n), ""); !ok {
					b.Fatal("no route")
				}
			}
		})
		b.Run(fmt.Sprintf("lookup-floor/%d", n), func(b *testing.B) {
			for i := range b.N {
				if _, ok := floor[int64(70000000+i%n)]; !ok {
					b.Fatal("no route")
				}
			}
		})
		b.Run(fmt.Sprintf("learn/%d", n), func(b *testing.B) {
			for i := range b.N {
				st, err := wire.DecodeState(states[i%n])
				if err != nil {
					b.Fatal(err)
				}
				r.update(fmt.Sprintf("site-%d", i%n), &st)
			}
		})
		b.Run(fmt.Sprintf("learn-floor/%d", n), func(b *testing.B) {
			for i := range b.N {
				if _, err := wire.DecodeState(states[i%n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
