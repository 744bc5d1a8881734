package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/store"
)

// `sitelink sessions -archive` reads the month files under the config's
// data_dir: newest first, by day, as a table or JSON, damaged lines named
// by file and line.
func TestSessionsArchive(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sitelink.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("node: {id: s1, data_dir: %s}\nstations: [{number: \"5\"}]\ntariff: {price_per_kwh: 0.39}\n", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "archive")
	if err := os.Mkdir(archive, 0o750); err != nil {
		t.Fatal(err)
	}
	at := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 12, 0, 0, 0, time.Local) }
	tariff := &store.Tariff{Currency: "EUR", DecimalPlace: 2, PricePerKWhMicro: 390000}
	write := func(month string, extra string, ss ...store.Session) {
		var b []byte
		for _, s := range ss {
			v, _ := json.Marshal(s)
			b = append(append(b, v...), '\n')
		}
		if err := os.WriteFile(filepath.Join(archive, store.ArchiveFileName(month)), append(b, extra...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := func(id string, created time.Time) store.Session {
		return store.Session{SparkTransactionID: id, Station: "5", State: store.Settled, NayaxTransactionID: 77,
			AuthorizedMinor: 2000, AmountMinor: 59, EnergyWh: 1500, Tariff: tariff, CreatedAt: created, UpdatedAt: created.Add(time.Hour)}
	}
	write(store.ArchiveMonth(&store.Session{CreatedAt: at(1, 10)}), "", s("jan-10", at(1, 10)), s("jan-20", at(1, 20)))
	write(store.ArchiveMonth(&store.Session{CreatedAt: at(2, 3)}), "", s("feb-3", at(2, 3)))

	sessions := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := run(append([]string{"sessions", "-archive", "-config", cfg}, args...), &out, &errb)
		return out.String(), errb.String(), err
	}
	ids := func(out string) []string {
		var v []localapi.Session
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var r []string
		for _, x := range v {
			r = append(r, x.SparkTransactionID)
		}
		return r
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "[feb-3 jan-20 jan-10]"},
		{[]string{"-n", "1"}, "[feb-3]"},
		{[]string{"-since", "2026-01-20"}, "[feb-3 jan-20]"},
		{[]string{"-until", "2026-01-20"}, "[jan-20 jan-10]"},
		{[]string{"-since", "2026-01-11", "-until", "2026-01-31"}, "[jan-20]"},
		{[]string{"-since", "2027-01-01"}, "[]"},
	} {
		out, errOut, err := sessions(append(tc.args, "-json")...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, errOut)
		}
		if got := fmt.Sprint(ids(out)); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.args, got, tc.want)
		}
	}

	out, _, err := sessions()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SPARK TRANSACTION", "jan-20", "20.00 EUR", "0.59 EUR", "settled"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// A damaged line: the rest is listed, the line named, exit 1.
	feb := store.ArchiveMonth(&store.Session{CreatedAt: at(2, 3)})
	write(feb, "{oops\n", s("feb-3", at(2, 3)))
	out, errOut, err := sessions("-json")
	var ec exitCode
	if !errors.As(err, &ec) || ec != 1 {
		t.Errorf("damaged line: err %v, want exit 1", err)
	}
	if got := fmt.Sprint(ids(out)); got != "[feb-3 jan-20 jan-10]" {
		t.Errorf("damaged line: listed %s", got)
	}
	if want := filepath.Join(archive, store.ArchiveFileName(feb)) + ":2: corrupt record"; !strings.Contains(errOut, want) {
		t.Errorf("stderr %q lacks %q", errOut, want)
	}

	// Usage errors.
	for _, args := range [][]string{{"sessions", "-since", "2026-01-01"}, {"sessions", "-archive", "-since", "yesterday"}} {
		var o, e bytes.Buffer
		if err := run(args, &o, &e); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
