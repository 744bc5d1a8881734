package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sitelink/sitelink/store"
)

// The "ledger" group: issue 15 item 2's stated bounds. Three years of a
// site at 1,000 sessions a day go through the store day by day, with
// retention (90 days) run after each day as the daemon runs it; then the
// ledger's size, a cold start with the file out of the page cache, and
// the RSS of the process that opened it are compared with a ledger of
// 90 days' sessions built directly, the floor: what the ledger must hold
// anyway. The simulation writes a day's sessions, finished, in one
// commit, and runs with NoSync, the archive's writes included (a site
// fsyncs every transition; the figures are sizes and times after, not
// the simulation's speed).

func init() {
	register("ledger", runLedger)
	// The cold start is measured in a process of its own.
	if path := os.Getenv(ledgerColdEnv); path != "" {
		ledgerColdChild(path)
	}
}

const ledgerColdEnv = "SITELINK_BENCH_LEDGER_OPEN"

// ledgerRetention is the default storage.retention.
const ledgerRetention = 90 * 24 * time.Hour

func runLedger(ctx context.Context, e *env) ([]Row, error) {
	days, perDay := 3*365, 1000
	if e.Short {
		days, perDay = 200, 20
	}
	start := time.Date(2023, 1, 1, 6, 0, 0, 0, time.UTC)
	gen := newLedgerGen(perDay)

	// The floor: 90 days of sessions, built directly, no retention.
	floorPath := filepath.Join(e.Dir, "floor", "sitelink.db")
	floor, err := store.Open(floorPath, store.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	for d := range int(ledgerRetention / (24 * time.Hour)) {
		if err := gen.day(floor, start.AddDate(0, 0, d)); err != nil {
			floor.Close()
			return nil, err
		}
	}
	if err := floor.Close(); err != nil {
		return nil, err
	}

	// Three years, with retention after each day.
	path := filepath.Join(e.Dir, "site", "sitelink.db")
	st, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	var passes time.Duration
	var sizes []string
	for d := range days {
		if err := ctx.Err(); err != nil {
			st.Close()
			return nil, err
		}
		day := start.AddDate(0, 0, d)
		if err := gen.day(st, day); err != nil {
			st.Close()
			return nil, err
		}
		t0 := time.Now()
		if _, err := st.Archive(ctx, day.Add(24*time.Hour-ledgerRetention), store.ArchiveOptions{Pause: time.Nanosecond}); err != nil {
			st.Close()
			return nil, err
		}
		passes += time.Since(t0)
		if n := d + 1; n == 90 || n%365 == 0 {
			l, err := st.LedgerStats()
			if err != nil {
				st.Close()
				return nil, err
			}
			sizes = append(sizes, fmt.Sprintf("%s %s", ledgerDayLabel(n), ledgerMB(l.FileBytes)))
		}
	}
	final, err := st.LedgerStats()
	if err != nil {
		st.Close()
		return nil, err
	}
	kept, err := st.Counts()
	if err != nil {
		st.Close()
		return nil, err
	}
	if err := st.Close(); err != nil {
		return nil, err
	}
	floorSize, err := ledgerFileSize(floorPath)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, n := range kept {
		total += n
	}
	archBytes, archFiles, err := ledgerDirSize(filepath.Join(filepath.Dir(path), "archive"))
	if err != nil {
		return nil, err
	}
	sessions := days * perDay
	perSession := float64(floorSize) / float64(90*perDay)

	coldSite, err := ledgerColdStart(path)
	if err != nil {
		return nil, fmt.Errorf("cold start: %w", err)
	}
	coldFloor, err := ledgerColdStart(floorPath)
	if err != nil {
		return nil, fmt.Errorf("cold start of the floor: %w", err)
	}

	// Compaction of that ledger, forced (it has little free
	// space: retention's freed pages are reused by the next days).
	t0 := time.Now()
	cs, err := store.Open(path, store.Options{CompactFreePercent: 1})
	if err != nil {
		return nil, err
	}
	took := time.Since(t0)
	after, err := cs.LedgerStats()
	cs.Close()
	if err != nil {
		return nil, err
	}
	compacted := "not due"
	if after.Compactions > 0 {
		compacted = fmt.Sprintf("%s → %s", ledgerMB(final.FileBytes), ledgerMB(after.FileBytes))
	}

	years := fmt.Sprintf("%d days at %d sessions/day (%d sessions)", days, perDay, sessions)
	return []Row{
		{
			Figure:   "ledger file after " + years + ", retention 90d",
			Sitelink: fmt.Sprintf("%s (%d sessions, %.0f%% free)", ledgerMB(final.FileBytes), total, final.FreePercent()),
			Floor:    fmt.Sprintf("%s: 90 days built directly", ledgerMB(floorSize)),
			Ratio:    float64(final.FileBytes) / float64(floorSize),
			Target:   "≤ 1.5× (flat)",
			Note: fmt.Sprintf("%s; without retention ~%s; %d left awaiting reconciliation",
				strings.Join(sizes, ", "), ledgerMB(int64(perSession*float64(sessions))), kept[store.NeedsReconciliation]),
		},
		{
			Figure:   "cold start (Open + ActiveSessions + Counts), ledger out of the page cache",
			Sitelink: ledgerMS(coldSite.Took),
			Floor:    ledgerMS(coldFloor.Took) + ": the 90-day ledger",
			Ratio:    coldSite.Took.Seconds() / coldFloor.Took.Seconds(),
			Target:   "≤ 1 s",
			Note:     fmt.Sprintf("posix_fadvise(DONTNEED) on the file, %.0f%% of it resident before the open; the map is populated in one sequential read (MAP_POPULATE), then bbolt walks every page to rebuild its free list", coldSite.ResidentBefore),
		},
		{
			Figure:   "RSS after the cold start",
			Sitelink: fmt.Sprintf("%s (%s anonymous, %s of mapped ledger)", ledgerMB(coldSite.RSS), ledgerMB(coldSite.RSSAnon), ledgerMB(coldSite.RSSFile)),
			Floor:    fmt.Sprintf("%s: the 90-day ledger", ledgerMB(coldFloor.RSS)),
			Ratio:    float64(coldSite.RSS) / float64(coldFloor.RSS),
			Target:   "flat",
			Note:     "the mapped ledger is page cache, reclaimable under memory pressure; the anonymous part is the process's own",
		},
		{
			Figure:   "retention pass of one day's sessions (batches of 256)",
			Sitelink: ledgerMS(passes / time.Duration(days)),
			Floor:    "-",
			Note:     "mean over the days, CPU and writes without fsync (NoSync); a site adds three fsyncs per batch",
		},
		{
			Figure:   "compaction of that ledger at Open",
			Sitelink: ledgerMS(took),
			Floor:    "-",
			Note:     compacted + " (forced: storage.compact_free_percent 1)",
		},
		{
			Figure:   "archive after " + years,
			Sitelink: fmt.Sprintf("%s in %d month files", ledgerMB(archBytes), archFiles),
			Floor:    "-",
			Note:     fmt.Sprintf("%d sessions archived, %.0f bytes each", final.Archived, float64(archBytes)/max(float64(final.Archived), 1)),
		},
	}, nil
}

func ledgerDayLabel(n int) string {
	if n%365 == 0 {
		return fmt.Sprintf("%dy", n/365)
	}
	return fmt.Sprintf("%dd", n)
}

// ledgerGen writes a day of finished sessions, each with the history,
// answers, payment record and ticket a real session carries.
type ledgerGen struct {
	perDay int
	n      int64
}

func newLedgerGen(perDay int) *ledgerGen { return &ledgerGen{perDay: perDay} }

func (g *ledgerGen) day(st *store.Store, day time.Time) error {
	ss := make([]store.Session, g.perDay)
	step := 16 * time.Hour / time.Duration(g.perDay)
	for i := range ss {
		g.n++
		created := day.Add(time.Duration(i) * step)
		ss[i] = store.Session{
			SparkTransactionID: ledgerUUID(g.n),
			NayaxTransactionID: 2365843359698344 + g.n,
			Station:            strconv.Itoa(int(g.n%8) + 1),
			Origin:             store.OriginRemote,
			MachineID:          71234996,
			HwSerial:           "0434334921100366",
			SiteID:             "1",
			MachineAuTime:      created.Format("20060102150405") + "000",
			CardDigest:         fmt.Sprintf("%064x", g.n*104729),
			CardLast4:          "4242",
			Ticket:             json.RawMessage(fmt.Sprintf(`{"nayax":%d,"spark":"%08x","max":"20.00","mac":"3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, 2365843359698344+g.n, g.n)),
			AuthorizedMinor:    2000,
			MeterStartWh:       float64(g.n) * 9000,
			Tariff:             &store.Tariff{Currency: "EUR", DecimalPlace: 2, PricePerKWhMicro: 390000},
			CreatedAt:          created,
			UpdatedAt:          created.Add(time.Minute),
			State:              store.Charging,
			History: []store.Transition{
				{State: store.Requested, At: created},
				{State: store.Authorized, At: created.Add(20 * time.Second)},
				{State: store.Charging, At: created.Add(time.Minute), Reason: "vehicle drawing energy"},
			},
		}
	}
	for i := range ss {
		s := &ss[i]
		end := s.CreatedAt.Add(45 * time.Minute)
		s.EnergyWh = 9000
		s.StopReason = "unplugged"
		final, call := store.Settled, "Settlement"
		// 1 in 1,000 waits for an operator, 2 % are cancelled (no
		// energy), 2.5 % declined.
		switch n := g.n - int64(len(ss)-1-i); {
		case n%1000 == 7:
			final, call = store.NeedsReconciliation, "Settlement"
		case n%50 == 3:
			final, call, s.EnergyWh = store.Cancelled, "CancelTransaction", 2
		case n%40 == 5:
			final, call = store.Declined, ""
		}
		s.AmountMinor = 351
		s.History = append(s.History,
			store.Transition{State: store.Stopping, At: end, Reason: "unplugged"},
			store.Transition{State: store.Stopped, At: end.Add(time.Second)},
			store.Transition{State: store.Settling, At: end.Add(time.Second)},
			store.Transition{State: final, At: end.Add(3 * time.Second)})
		if call != "" {
			a := store.Answer{Call: call, Outcome: "approved", At: end.Add(3 * time.Second)}
			s.LastAnswer = &a
			s.Answers = []store.Answer{a}
			s.Payment = &store.PaymentRecord{Call: call, Verdict: "Approved", AuthCode: "333333", NayaxRRN: "123456789012",
				Amount: "3.51", SeTime: end.Format("20060102150405"), MachineAuTime: s.MachineAuTime, At: end.Add(3 * time.Second)}
		}
		s.State = final
		s.UpdatedAt = end.Add(3 * time.Second)
	}
	return ledgerPutAll(st, ss)
}

// ledgerUUID is the nth session's SparkTransactionID: random-looking, as
// the daemon's UUIDs are (the ledger's pages fill differently with ids
// that ascend), and the same in every run.
func ledgerUUID(n int64) string {
	mix := func(x uint64) uint64 { // splitmix64
		x += 0x9e3779b97f4a7c15
		x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
		x = (x ^ x>>27) * 0x94d049bb133111eb
		return x ^ x>>31
	}
	a, b := mix(uint64(n)), mix(uint64(n)^0xdeadbeef)
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>52, b&0xffffffffffff)
}

func ledgerPutAll(st *store.Store, ss []store.Session) error {
	return st.Update(func(tx *store.Tx) error {
		for i := range ss {
			if err := tx.PutSession(&ss[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// ledgerCold is what the cold-start child reports.
type ledgerCold struct {
	Took           time.Duration `json:"took"`
	ResidentBefore float64       `json:"resident_before"` // % of the file in the page cache before the open
	RSS            int64         `json:"ledgerRSS"`
	RSSAnon        int64         `json:"rss_anon"`
	RSSFile        int64         `json:"rss_file"`
}

// ledgerColdStart drops the ledger from the page cache, then opens it in a new
// process as the daemon does and reports how long that took.
func ledgerColdStart(path string) (ledgerCold, error) {
	var r ledgerCold
	if err := ledgerDropCache(path); err != nil {
		return r, err
	}
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ledgerColdEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return r, err
	}
	err = json.Unmarshal(out, &r)
	return r, err
}

// ledgerColdChild is the child: open with the daemon's options, read what
// start-up reads, report, exit.
func ledgerColdChild(path string) {
	var r ledgerCold
	r.ResidentBefore = ledgerResident(path)
	t0 := time.Now()
	st, err := store.Open(path, store.Options{CompactFreePercent: 50, CompactMinBytes: 32 << 20})
	if err == nil {
		err = st.View(func(tx *store.Tx) error { _, err := tx.ActiveSessions(); return err })
	}
	if err == nil {
		_, err = st.Counts()
	}
	r.Took = time.Since(t0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cold start:", err)
		os.Exit(1)
	}
	runtime.GC()
	r.RSS, r.RSSAnon, r.RSSFile = ledgerRSS()
	st.Close()
	_ = json.NewEncoder(os.Stdout).Encode(r)
	os.Exit(0)
}

// ledgerDropCache writes the file's dirty pages and asks the kernel to drop
// its cached ones: a cold start without dropping every other process's
// cache (drop_caches) on a shared machine.
func ledgerDropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// ledgerResident is the percentage of the file's pages in the page cache.
func ledgerResident(path string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return -1
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return -1
	}
	defer unix.Munmap(m)
	ps := os.Getpagesize()
	vec := make([]byte, (len(m)+ps-1)/ps)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		return -1
	}
	in := 0
	for _, v := range vec {
		in += int(v & 1)
	}
	return 100 * float64(in) / float64(len(vec))
}

// ledgerRSS reads the process's resident set from /proc/self/status: total,
// anonymous (heap, stacks) and file-backed (the mapped ledger).
func ledgerRSS() (total, anon, file int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			total = kb << 10
		case "RssAnon":
			anon = kb << 10
		case "RssFile":
			file = kb << 10
		}
	}
	return
}

func ledgerFileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func ledgerDirSize(dir string) (size int64, files int, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			return 0, 0, err
		}
		size += fi.Size()
		files++
	}
	return size, files, nil
}

func ledgerMB(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func ledgerMS(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1e3)
}
