package store_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitelink/sitelink/store"
	"github.com/sitelink/sitelink/store/storetest"
)

func fleetConfig(t testing.TB, s *store.Store) store.FleetConfig {
	t.Helper()
	fc, err := s.FleetConfig()
	if err != nil {
		t.Fatalf("FleetConfig: %v", err)
	}
	return fc
}

func configHistory(t testing.TB, s *store.Store) []store.ConfigRecord {
	t.Helper()
	h, err := s.ConfigHistory()
	if err != nil {
		t.Fatalf("ConfigHistory: %v", err)
	}
	return h
}

func recordConfig(t testing.TB, s *store.Store, fc *store.FleetConfig, rec store.ConfigRecord) {
	t.Helper()
	if err := s.RecordConfig(fc, rec); err != nil {
		t.Fatalf("RecordConfig: %v", err)
	}
}

func TestFleetConfigRoundTrip(t *testing.T) {
	// Config is compact JSON: the store keeps it as encoding/json
	// re-encodes a RawMessage.
	group := &store.Desired{Version: 3, Config: json.RawMessage(`{"policy":{"plug_timeout":"60s"}}`)}
	node := &store.Desired{Version: 7, Config: json.RawMessage(`{"tariff":{"price_per_kwh":0.45},"stations":[{"number":"5"}]}`)}
	tests := []struct {
		name string
		fc   store.FleetConfig
	}{
		{"group and node", store.FleetConfig{
			Group: group, Node: node,
			Decided: map[string]int64{"group": 4, "node": 7},
			Version: 7, At: t0,
		}},
		{"group only", store.FleetConfig{Group: group, Decided: map[string]int64{"group": 3}, Version: 3, At: t0}},
		{"node only", store.FleetConfig{Node: node, Decided: map[string]int64{"node": 7, "group": 9}, Version: 7, At: t0.Add(1)}},
		{"nothing applied, versions decided", store.FleetConfig{Decided: map[string]int64{"group": 2}, At: t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storetest.Open(t, store.Options{NoSync: true})
			if got := fleetConfig(t, s); !reflect.DeepEqual(got, store.FleetConfig{}) {
				t.Errorf("new store: FleetConfig = %+v, want the zero value", got)
			}
			if h := configHistory(t, s); len(h) != 0 {
				t.Errorf("new store: history %+v", h)
			}
			recordConfig(t, s, &tt.fc, store.ConfigRecord{Source: "node", Version: tt.fc.Version, Applied: true, At: t0})
			if got := fleetConfig(t, s); !reflect.DeepEqual(got, tt.fc) {
				t.Errorf("FleetConfig =\n %+v\nwant\n %+v", got, tt.fc)
			}
		})
	}

	t.Run("replaced, not merged", func(t *testing.T) {
		s := storetest.Open(t, store.Options{NoSync: true})
		recordConfig(t, s, &tests[0].fc, store.ConfigRecord{Source: "node", Version: 7, Applied: true})
		next := store.FleetConfig{Node: node, Decided: map[string]int64{"node": 8}, Version: 7, At: t0.Add(2)}
		recordConfig(t, s, &next, store.ConfigRecord{Source: "group", Version: 4})
		if got := fleetConfig(t, s); !reflect.DeepEqual(got, next) {
			t.Errorf("FleetConfig =\n %+v\nwant\n %+v", got, next)
		}
	})
}

func TestRecordConfigNilKeepsState(t *testing.T) {
	s := storetest.Open(t, store.Options{NoSync: true})
	fc := store.FleetConfig{
		Group:   &store.Desired{Version: 2, Config: json.RawMessage(`{"tariff":{"price_per_kwh":0.4}}`)},
		Decided: map[string]int64{"group": 2},
		Version: 2, At: t0,
	}
	recordConfig(t, s, &fc, store.ConfigRecord{Source: "group", Version: 2, Applied: true, At: t0})
	refused := store.ConfigRecord{
		Source: "group", Version: 3, Error: "tariff.price_per_kwh: must be >= 0, got -1",
		Config: json.RawMessage(`{"tariff":{"price_per_kwh":-1}}`), At: t0.Add(1),
	}
	recordConfig(t, s, nil, refused)
	if got := fleetConfig(t, s); !reflect.DeepEqual(got, fc) {
		t.Errorf("after RecordConfig(nil, …): FleetConfig =\n %+v\nwant\n %+v", got, fc)
	}
	h := configHistory(t, s)
	if len(h) != 2 {
		t.Fatalf("history has %d records, want 2: %+v", len(h), h)
	}
	refused.Seq = 2
	if !reflect.DeepEqual(h[1], refused) {
		t.Errorf("refused record =\n %+v\nwant\n %+v", h[1], refused)
	}

	// Without any state yet, a nil state writes none.
	s2 := storetest.Open(t, store.Options{NoSync: true})
	recordConfig(t, s2, nil, refused)
	if got := fleetConfig(t, s2); !reflect.DeepEqual(got, store.FleetConfig{}) {
		t.Errorf("RecordConfig(nil, …) on a new store wrote %+v", got)
	}
	if h := configHistory(t, s2); len(h) != 1 || h[0].Version != 3 {
		t.Errorf("history %+v, want the one record", h)
	}
}

func TestConfigHistory(t *testing.T) {
	tests := []struct {
		records  int
		wantSeqs []uint64 // first and last kept
	}{
		{1, []uint64{1, 1}},
		{store.ConfigHistoryMax - 1, []uint64{1, store.ConfigHistoryMax - 1}},
		{store.ConfigHistoryMax, []uint64{1, store.ConfigHistoryMax}},
		{store.ConfigHistoryMax + 1, []uint64{2, store.ConfigHistoryMax + 1}},
		{3*store.ConfigHistoryMax + 5, []uint64{2*store.ConfigHistoryMax + 6, 3*store.ConfigHistoryMax + 5}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.records), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sitelink.db")
			s := storetest.OpenPath(t, path, store.Options{NoSync: true})
			for i := 1; i <= tt.records; i++ {
				rec := store.ConfigRecord{
					Seq:     999, // assigned by the store
					Source:  []string{"group", "node", "file"}[i%3],
					Version: int64(i), Applied: i%2 == 0,
					Config: json.RawMessage(fmt.Sprintf(`{"tariff":{"session_fee":%d}}`, i)),
					At:     t0.Add(time.Duration(i)),
				}
				if !rec.Applied {
					rec.Error = fmt.Sprintf("refused %d", i)
				}
				recordConfig(t, s, nil, rec)
			}
			h := configHistory(t, s)
			want := min(tt.records, store.ConfigHistoryMax)
			if len(h) != want {
				t.Fatalf("history has %d records, want %d", len(h), want)
			}
			if h[0].Seq != tt.wantSeqs[0] || h[len(h)-1].Seq != tt.wantSeqs[1] {
				t.Errorf("kept seqs %d..%d, want %d..%d", h[0].Seq, h[len(h)-1].Seq, tt.wantSeqs[0], tt.wantSeqs[1])
			}
			for i, r := range h {
				if i > 0 && r.Seq != h[i-1].Seq+1 {
					t.Errorf("history[%d].Seq = %d after %d: not oldest first without gaps", i, r.Seq, h[i-1].Seq)
				}
				// Seq n recorded version n: the record is the one sent.
				n := int64(r.Seq)
				wantRec := store.ConfigRecord{
					Seq: r.Seq, Source: []string{"group", "node", "file"}[n%3],
					Version: n, Applied: n%2 == 0,
					Config: json.RawMessage(fmt.Sprintf(`{"tariff":{"session_fee":%d}}`, n)),
					At:     t0.Add(time.Duration(n)),
				}
				if !wantRec.Applied {
					wantRec.Error = fmt.Sprintf("refused %d", n)
				}
				if !reflect.DeepEqual(r, wantRec) {
					t.Errorf("history[%d] =\n %+v\nwant\n %+v", i, r, wantRec)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Trimmed records are gone from the file, not just skipped.
			if c := rawKeyCounts(t, path); c["config_history"] != want || c["config"] != 0 {
				t.Errorf("on disk: config_history %d keys, config %d; want %d and 0", c["config_history"], c["config"], want)
			}
		})
	}
}

func TestFleetConfigSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path, store.Options{NoSync: true})
	fc := store.FleetConfig{
		Group:   &store.Desired{Version: 5, Config: json.RawMessage(`{"policy":{"plug_timeout":"60s"}}`)},
		Node:    &store.Desired{Version: 9, Config: json.RawMessage(`{}`)},
		Decided: map[string]int64{"group": 6, "node": 9},
		Version: 9, At: t0,
	}
	n := store.ConfigHistoryMax + 3
	for i := 1; i <= n; i++ {
		recordConfig(t, s, &fc, store.ConfigRecord{Source: "node", Version: int64(i), Applied: true, At: t0})
	}
	before := configHistory(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = storetest.OpenPath(t, path, store.Options{NoSync: true})
	if got := fleetConfig(t, s); !reflect.DeepEqual(got, fc) {
		t.Errorf("after reopen: FleetConfig =\n %+v\nwant\n %+v", got, fc)
	}
	after := configHistory(t, s)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("after reopen: history =\n %+v\nwant\n %+v", after, before)
	}
	// Sequence numbers go on from where they were: never reused.
	recordConfig(t, s, nil, store.ConfigRecord{Source: "file", At: t0})
	h := configHistory(t, s)
	if len(h) != store.ConfigHistoryMax {
		t.Fatalf("history has %d records, want %d", len(h), store.ConfigHistoryMax)
	}
	if last := h[len(h)-1].Seq; last != uint64(n+1) {
		t.Errorf("seq after reopen = %d, want %d", last, n+1)
	}
	if first := h[0].Seq; first != uint64(n+2-store.ConfigHistoryMax) {
		t.Errorf("oldest kept seq = %d, want %d", first, n+2-store.ConfigHistoryMax)
	}
}

func TestFleetConfigClosed(t *testing.T) {
	s := storetest.Open(t, store.Options{NoSync: true})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, errFC := s.FleetConfig()
	_, errHist := s.ConfigHistory()
	for name, err := range map[string]error{
		"FleetConfig":   errFC,
		"ConfigHistory": errHist,
		"RecordConfig":  s.RecordConfig(&store.FleetConfig{}, store.ConfigRecord{}),
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestFleetConfigCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sitelink.db")
	s := storetest.OpenPath(t, path, store.Options{NoSync: true})
	recordConfig(t, s, &store.FleetConfig{Version: 1}, store.ConfigRecord{Source: "node", Version: 1})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("config")).Put([]byte("applied"), []byte(`{"version":`)); err != nil {
			return err
		}
		return tx.Bucket([]byte("config_history")).Put(binary.BigEndian.AppendUint64(nil, 1), []byte("\x00"))
	})
	s = storetest.OpenPath(t, path, store.Options{NoSync: true})
	if _, err := s.FleetConfig(); err == nil {
		t.Error("FleetConfig of a corrupt record: no error")
	}
	if _, err := s.ConfigHistory(); err == nil {
		t.Error("ConfigHistory with a corrupt record: no error")
	}
}
