package edge

import (
	"strconv"
	"sync"
	"time"

	"github.com/sitelink/sitelink/store"
)

// answerWindow is how many recent sessions seed the last-Nayax-answer
// gauges at start: enough to see every call kind on a busy site.
const answerWindow = 100

// maxAnswerKinds bounds the gauges' series: Nayax's calls, outcomes and
// codes make a few dozen kinds; past the bound the oldest kind goes.
const maxAnswerKinds = 256

// lastAnswers is when Nayax last gave each kind of answer (call, outcome,
// code), for the sitelink_nayax_last_answer_timestamp_seconds gauges. The
// engine notes each answer as it records it, so a scrape reads a small map
// instead of decoding sessions (it competed with stops for the CPU).
type lastAnswers struct {
	mu sync.Mutex
	at map[[3]string]time.Time
}

func newLastAnswers() *lastAnswers { return &lastAnswers{at: map[[3]string]time.Time{}} }

// seed notes the answers of the newest answerWindow sessions (at start,
// before the engine runs).
func (l *lastAnswers) seed(st *store.Store) error {
	return st.View(func(tx *store.Tx) error {
		return tx.Sessions(answerWindow, func(s store.Session) bool {
			l.note(s.LastAnswer)
			return true
		})
	})
}

// note records one answer; an older answer of a kind already held, or
// one without a call, changes nothing.
func (l *lastAnswers) note(a *store.Answer) {
	if a == nil || a.Call == "" {
		return
	}
	k := [3]string{a.Call, a.Outcome, strconv.Itoa(a.Code)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.at[k]; ok && !a.At.After(prev) {
		return
	}
	if _, ok := l.at[k]; !ok && len(l.at) >= maxAnswerKinds {
		var oldest [3]string
		first := true
		for kk, t := range l.at {
			if first || t.Before(l.at[oldest]) {
				oldest, first = kk, false
			}
		}
		delete(l.at, oldest)
	}
	l.at[k] = a.At
}

// each calls f for every kind held (none for a nil lastAnswers).
func (l *lastAnswers) each(f func(call, outcome, code string, at time.Time)) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, at := range l.at {
		f(k[0], k[1], k[2], at)
	}
}
