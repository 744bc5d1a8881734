package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/edge"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/store"
)

// archiveFlags are the flags of `sitelink sessions -archive`.
type archiveFlags struct {
	on           *bool
	since, until *string
	dir          *string
}

func addArchiveFlags(fs *flag.FlagSet) archiveFlags {
	return archiveFlags{
		on:    fs.Bool("archive", false, "list the archived sessions (data_dir/archive), not the ledger's"),
		since: fs.String("since", "", "with -archive: sessions created on or after this `day` (YYYY-MM-DD, local time)"),
		until: fs.String("until", "", "with -archive: sessions created on or before this `day` (YYYY-MM-DD, local time)"),
		dir:   fs.String("archive-dir", "", "with -archive: the archive `directory` (default: node.data_dir/archive of -config, else /var/lib/sitelink/archive)"),
	}
}

// listArchive prints archived sessions, newest first, like `sitelink
// sessions`. It reads the archive's files, not the ledger, so it works
// with the daemon running or not. A damaged line is reported as
// FILE:LINE: problem and skipped; the command then exits 1.
func listArchive(a archiveFlags, cfgFile string, n int, asJSON bool, stdout, stderr io.Writer) error {
	cfg := config.Default()
	if cfgFile != "" {
		c, err := config.LoadEdge(cfgFile)
		if err != nil {
			return fmt.Errorf("config %s:\n%w", cfgFile, err)
		}
		cfg = *c
	}
	dir := cfg.ArchiveDir()
	if *a.dir != "" {
		dir = *a.dir
	}
	q := store.ArchiveQuery{Limit: max(n, 0)}
	var err error
	if q.Since, err = day("-since", *a.since); err != nil {
		return err
	}
	if q.Until, err = day("-until", *a.until); err != nil {
		return err
	}
	if !q.Until.IsZero() {
		q.Until = q.Until.AddDate(0, 0, 1) // the whole day
	}
	bad := 0
	ss, err := store.ArchivedSessions(dir, q, func(e *store.ArchiveLineError) {
		bad++
		fmt.Fprintf(stderr, "sitelink: %v\n", e)
	})
	if err != nil {
		return err
	}
	views := make([]localapi.Session, 0, len(ss))
	for _, s := range ss {
		views = append(views, edge.SessionView(s, cfg.Tariff))
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(views)
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		printSessions(tw, views)
		err = tw.Flush()
	}
	if err != nil {
		return err
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "sitelink: %d damaged lines in %s skipped\n", bad, dir)
		return exitCode(1)
	}
	return nil
}

// day parses a -since or -until day in local time; "" is no bound.
func day(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want a day such as 2026-09-30", flag, s)
	}
	return t, nil
}
