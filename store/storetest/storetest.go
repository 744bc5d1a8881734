// Package storetest opens throw-away stores for tests and checks, when the
// test ends, that the bbolt file is still consistent.
//
// # Caveats
//
// The consistency check runs in t.Cleanup after the store is closed; a
// test that reopens the file itself must close its own handle in a
// cleanup registered later (cleanups run last-in first-out), or the check
// waits for the lock and fails.
package storetest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sitelink/sitelink/store"
)

// Open opens a fresh store in t.TempDir(). The store is closed and its
// file checked with bbolt's consistency check when the test ends.
func Open(t testing.TB, opts ...store.Options) *store.Store {
	t.Helper()
	return OpenPath(t, filepath.Join(t.TempDir(), "sitelink.db"), opts...)
}

// OpenPath is Open for a given path, for tests that reopen a file.
func OpenPath(t testing.TB, path string, opts ...store.Options) *store.Store {
	t.Helper()
	var o store.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := store.Open(path, o)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("storetest: %v", err)
		}
		Check(t, path)
	})
	return s
}

// Check runs bbolt's consistency check on a closed store file and reports
// every inconsistency as a test error. A missing file is not an error.
func Check(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		ReadOnly:       true,
		Timeout:        5 * time.Second,
		FreelistType:   bolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if err != nil {
		t.Errorf("storetest: check %s: %v", path, err)
		return
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("storetest: check %s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("storetest: check %s: %v", path, err)
	}
}
