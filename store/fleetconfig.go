package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// ConfigHistoryMax is how many fleet configuration decisions the ledger
// keeps: enough to see what changed last week, bounded so that a fleet
// tool publishing in a loop cannot grow the file.
const ConfigHistoryMax = 20

var configApplied = []byte("applied") // key in bucketConfig

// Desired is a fleet configuration document as the node received it: the
// version and the config object, verbatim.
type Desired struct {
	Version int64           `json:"version"`
	Config  json.RawMessage `json:"config"`
}

// FleetConfig is what the node runs on top of its local file: the group's
// and the node's last applied desired configs, and per source the highest
// version already decided (applied or refused), so that a replayed
// retained message is not decided twice.
type FleetConfig struct {
	Group   *Desired         `json:"group,omitempty"`
	Node    *Desired         `json:"node,omitempty"`
	Decided map[string]int64 `json:"decided,omitempty"` // source -> version
	// Version is the version of the last applied desired config, whichever
	// its source: the node's config_version.
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	// Unsent holds reports (config/reported payloads) decided but not yet
	// acknowledged by the broker, oldest first: committed with the
	// decision, so that a restart still sends them.
	Unsent []json.RawMessage `json:"unsent,omitempty"`
}

// ConfigRecord is one decision about a configuration, for operators.
type ConfigRecord struct {
	Seq     uint64          `json:"seq"`
	Source  string          `json:"source"` // group, node or file
	Version int64           `json:"version"`
	Applied bool            `json:"applied"`
	Error   string          `json:"error,omitempty"`
	Config  json.RawMessage `json:"config,omitempty"`
	At      time.Time       `json:"at"`
}

// FleetConfig returns the persisted fleet configuration; the zero value
// when there is none.
func (s *Store) FleetConfig() (FleetConfig, error) {
	var fc FleetConfig
	err := s.View(func(tx *Tx) error {
		b, err := tx.bucket(bucketConfig)
		if err != nil {
			return err
		}
		if v := b.Get(configApplied); v != nil {
			return json.Unmarshal(v, &fc)
		}
		return nil
	})
	if err != nil {
		return FleetConfig{}, fmt.Errorf("read fleet config: %w", err)
	}
	return fc, nil
}

// RecordConfig commits a configuration decision: the new fleet state (nil
// leaves it as it is) and the record, in one transaction, dropping the
// oldest records beyond ConfigHistoryMax.
func (s *Store) RecordConfig(fc *FleetConfig, rec ConfigRecord) error {
	err := s.Update(func(tx *Tx) error {
		if fc != nil {
			if err := tx.putFleet(*fc); err != nil {
				return err
			}
		}
		h, err := tx.bucket(bucketConfigHistory)
		if err != nil {
			return err
		}
		seq, err := h.NextSequence()
		if err != nil {
			return err
		}
		rec.Seq = seq
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := h.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
			return err
		}
		n := 0
		c := h.Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			n++
		}
		for ; n > ConfigHistoryMax; n-- {
			if k, _ := c.First(); k != nil {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record config: %w", err)
	}
	return nil
}

// PutFleetConfig replaces the persisted fleet configuration alone (no
// history record), e.g. once its reports were sent.
func (s *Store) PutFleetConfig(fc FleetConfig) error {
	if err := s.Update(func(tx *Tx) error { return tx.putFleet(fc) }); err != nil {
		return fmt.Errorf("put fleet config: %w", err)
	}
	return nil
}

func (tx *Tx) putFleet(fc FleetConfig) error {
	b, err := tx.bucket(bucketConfig)
	if err != nil {
		return err
	}
	v, err := json.Marshal(fc)
	if err != nil {
		return err
	}
	return b.Put(configApplied, v)
}

// ConfigHistory returns the kept configuration decisions, oldest first.
func (s *Store) ConfigHistory() ([]ConfigRecord, error) {
	var out []ConfigRecord
	err := s.View(func(tx *Tx) error {
		h, err := tx.bucket(bucketConfigHistory)
		if err != nil {
			return err
		}
		return h.ForEach(func(_, v []byte) error {
			var r ConfigRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("config history: %w", err)
	}
	return out, nil
}
