package edge

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/store"
)

// How often sessions past storage.retention leave the ledger: a first
// pass shortly after the start (once the reconcile and the first
// commands are through), then hourly. Variables for tests.
var (
	retentionFirst = 30 * time.Second
	retentionEvery = time.Hour
)

// retention moves the sessions past storage.retention from the ledger to
// the archive (store.Archive) on a goroutine of its own, never the
// engine's: the engine's commits wait at most behind one batch's short
// transaction, whatever the backlog.
type retention struct {
	log *slog.Logger
	st  *store.Store
	cfg *atomic.Pointer[config.Edge]
	now func() time.Time
}

func (r *retention) run(ctx context.Context) {
	t := time.NewTimer(retentionFirst)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.pass(ctx)
		t.Reset(retentionEvery)
	}
}

// pass archives what is due under the running configuration. With
// retention off it still undoes a batch a crash interrupted.
func (r *retention) pass(ctx context.Context) {
	cfg := r.cfg.Load()
	var cutoff time.Time // zero: no session is old enough
	if keep := cfg.Storage.Retention.D(); keep > 0 {
		cutoff = r.now().Add(-keep)
	}
	start := time.Now()
	res, err := r.st.Archive(ctx, cutoff, store.ArchiveOptions{})
	if err != nil && !errors.Is(err, context.Canceled) {
		r.log.Error("archive sessions", "err", err, "archived", res.Sessions)
	}
	if res.Sessions == 0 {
		return
	}
	r.log.Info("sessions archived", "sessions", res.Sessions, "older_than", cfg.Storage.Retention.String(),
		"dir", r.st.ArchiveDir(), "took", time.Since(start).Round(time.Millisecond))
	l, err := r.st.LedgerStats()
	if err != nil {
		r.log.Warn("ledger stats", "err", err)
		return
	}
	if cfg.StoreOptions(store.Options{}).CompactDue(l) {
		r.log.Info("the ledger file is mostly free space; it is compacted at the next start (systemctl restart sitelink)",
			"file_bytes", l.FileBytes, "free_bytes", l.FreeBytes)
	}
}
