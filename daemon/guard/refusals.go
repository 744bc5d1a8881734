package guard

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// DefaultEvery is the interval of Refusals' summary lines when none is
// given: frequent enough to see a flood start and stop, rare enough that a
// flood costs one line a minute.
const DefaultEvery = time.Minute

// Refusals counts what a server turned away, by reason, and logs a summary
// at most once per interval: the first refusal after a quiet interval at
// once, so the start of a flood shows without delay, and the rest with the
// next line. The zero value is not usable; use NewRefusals.
type Refusals struct {
	log   *slog.Logger
	level slog.Level
	msg   string
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	total map[string]uint64 // since start, for a metric
	since map[string]uint64 // since the last line
	last  time.Time         // when the last line was written
}

// NewRefusals returns a counter whose summary lines say msg ("requests
// refused") at level, at most once per every (DefaultEvery if <= 0), with
// the total and the count of each reason since the last line. A nil log
// counts without logging.
func NewRefusals(log *slog.Logger, level slog.Level, msg string, every time.Duration) *Refusals {
	if every <= 0 {
		every = DefaultEvery
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Refusals{log: log, level: level, msg: msg, every: every, now: time.Now, total: map[string]uint64{}, since: map[string]uint64{}}
}

// Refuse counts one refusal. reason becomes a metric label: it must come
// from a small fixed set, never from the request.
func (r *Refusals) Refuse(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total[reason]++
	r.since[reason]++
	if now := r.now(); now.Sub(r.last) >= r.every {
		r.write(now)
	}
}

// Flush writes the counts not yet logged, if any, whenever the last line
// was; an owner calls it when it stops.
func (r *Refusals) Flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.since) > 0 {
		r.write(r.now())
	}
}

// Run logs the counts of each interval until ctx ends, then flushes.
// Without it the counts of the end of a flood wait for the next refusal.
func (r *Refusals) Run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.Flush()
			return
		case <-t.C:
			r.mu.Lock()
			if now := r.now(); len(r.since) > 0 && now.Sub(r.last) >= r.every {
				r.write(now)
			}
			r.mu.Unlock()
		}
	}
}

// Totals returns the count of each reason since start.
func (r *Refusals) Totals() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.total)
}

// write logs the counts since the last line and starts a new interval;
// r.mu is held.
func (r *Refusals) write(now time.Time) {
	var n uint64
	args := make([]any, 2, 2+2*len(r.since))
	for _, k := range slices.Sorted(maps.Keys(r.since)) {
		n += r.since[k]
		args = append(args, k, r.since[k])
	}
	args[0], args[1] = "total", n
	r.log.Log(context.Background(), r.level, r.msg, args...)
	clear(r.since)
	r.last = now
}
