package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

// env is what every runner gets: the shared broker, a scratch directory
// and whether this is the short (CI) run.
type env struct {
	Broker *benchBroker
	Dir    string
	Short  bool
}

// A runner measures one group of figures and their floors.
type runner struct {
	name string
	run  func(ctx context.Context, e *env) ([]Row, error)
}

// runners lists every group in the order the table prints them. Each
// file of this command adds its own in an init function.
var runners []runner

func register(name string, run func(ctx context.Context, e *env) ([]Row, error)) {
	runners = append(runners, runner{name, run})
}

func main() {
	short := flag.Bool("short", false, "a run of seconds that checks the table is produced (CI); the ratios mean little")
	only := flag.String("only", "", "comma-separated groups to run (default all)")
	format := flag.String("format", "text", "text, markdown or json")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of this process (the in-process groups: stop, drain, health, ledger) to `file`")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sitelink-bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := run(ctx, *short, *only, *format); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "sitelink-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, short bool, only, format string) error {
	dir, err := os.MkdirTemp("", "sitelink-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	br, err := startBroker(dir)
	if err != nil {
		return err
	}
	defer br.Close()
	var want []string
	if only != "" {
		want = strings.Split(only, ",")
	}
	fmt.Fprintf(os.Stderr, "sitelink-bench %s: %s/%s, %d CPUs, broker %s\n", time.Now().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), br.Kind)
	var rows []Row
	failed := 0
	for _, r := range runners {
		if want != nil && !slices.Contains(want, r.name) {
			continue
		}
		start := time.Now()
		fmt.Fprintf(os.Stderr, "== %s\n", r.name)
		sub, err := os.MkdirTemp(dir, r.name+"-")
		if err != nil {
			return err
		}
		got, err := r.run(ctx, &env{Broker: br, Dir: sub, Short: short})
		if err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "%s: %v\n", r.name, err)
			rows = append(rows, Row{Figure: r.name, Sitelink: "FAILED", Note: err.Error()})
			continue
		}
		fmt.Fprintf(os.Stderr, "   %s in %v\n", r.name, time.Since(start).Round(time.Millisecond))
		rows = append(rows, got...)
	}
	switch format {
	case "markdown":
		err = writeMarkdown(os.Stdout, rows)
	case "json":
		err = writeJSON(os.Stdout, rows)
	default:
		err = writeTable(os.Stdout, rows)
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of the groups failed", failed)
	}
	return nil
}
