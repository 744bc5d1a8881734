// The sitelink command is the edge gateway between Nayax payment terminals
// and EV charging stations: `sitelink run` is the site controller daemon,
// `sitelink demo` runs a whole site in one process, and the other
// subcommands operate a running daemon through its local API socket.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"github.com/coreos/go-systemd/v22/journal"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

const usage = `sitelink — edge gateway for paid EV charging (Nayax)

Usage:
  sitelink run -config FILE            run the edge daemon (systemd: sitelink.service)
  sitelink relay -config FILE          run the cloud relay Nayax calls (systemd: sitelink-relay.service)
  sitelink demo [-keep]                a whole chain in one process: broker, relay, Nayax simulator, site
  sitelink nayaxsim serve|tap|cortina-cancel|txns|requests
                                       a local stand-in for Nayax (Spark DMZ and callbacks)
  sitelink status   [-json]            daemon status (link, epoch, outbox)
  sitelink stations [-json]            stations: contactor, CP state, energy, faults
  sitelink sessions [-json] [-n N]     sessions, newest first
  sitelink sessions -archive [-since DAY] [-until DAY] [-json] [-n N]
                                       sessions moved out of the ledger (storage.retention),
                                       read from data_dir/archive (no daemon needed)
  sitelink outbox   [-json] [-n N]     events waiting for the broker
  sitelink start -station N [-amount X] [-json]
                                       Remote Start: the terminal asks for a card
  sitelink stop -station N [-json]     stop a station's session from the site
  sitelink resolve -note TEXT ID       close a needs-reconciliation session you settled by hand
  sitelink hw lines|pin|meter|scan|selftest for the technician commissioning a site
  sitelink sim -station N plug|unplug|fault|clear|power KW|start [-json]
                                       drive a simulated station
  sitelink fleet [-broker URL [-ca-file F -cert-file F -key-file F]|-config FILE] [-json]
                                       every node's presence from the retained states
  sitelink fleet terminals [-give NODE -machine-id ID|-give-from EDGE.yaml|-remove ...]
                                       who owns each terminal: the relay's only routes
  sitelink config show [-json]         the running daemon's effective config and where each value came
                                       from (default, file, group, node)
  sitelink config check [-elsewhere] [-json] FILE
                                       check an edge or relay config and the files and ports it names,
                                       as the daemon does at start: FILE:LINE: key: problem
  sitelink version [-json]             print the version

The operating commands find the daemon's socket from -socket PATH, else from
-config FILE (node.api_socket), else /run/sitelink/api.sock. Flags may come
before or after an action word (sim -station 5 plug, sim plug -station 5);
-json prints what a command reports as JSON, for scripts.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "sitelink:", err)
		os.Exit(1)
	}
}

// exitCode ends the process with a code after the command printed its own
// diagnostics.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitCode(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// After the first signal, a second one kills at once (default action).
	go func() { <-ctx.Done(); stop() }()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stderr)
	case "relay":
		defer catchHUP(ctx, stderr)()
		return cmdRelay(ctx, rest, stderr)
	case "nayaxsim":
		return cmdNayaxsim(ctx, rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "status", "stations", "sessions", "outbox":
		return cmdQuery(cmd, rest, stdout, stderr)
	case "sim":
		return cmdSim(rest, stdout, stderr)
	case "start":
		return cmdStart(rest, stdout, stderr)
	case "stop":
		return cmdStop(rest, stdout, stderr)
	case "resolve":
		return cmdResolve(rest, stdout, stderr)
	case "hw":
		return cmdHW(ctx, rest, stdout, stderr)
	case "fleet":
		return cmdFleet(ctx, rest, stdout, stderr)
	case "config":
		return cmdConfig(rest, stdout, stderr)
	case "version", "-version", "--version":
		return cmdVersion(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "sitelink: unknown command %q\n\n%s", cmd, usage)
		return exitCode(2)
	}
}

// cmdVersion prints the version; -json for scripts (and fleet tooling).
func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := flags("version", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitCode(2)
	}
	if *asJSON {
		return printJSON(stdout, map[string]string{"version": version, "go": runtime.Version()})
	}
	fmt.Fprintln(stdout, "sitelink", version)
	return nil
}

// catchHUP keeps the relay alive on SIGHUP (whose default action would
// kill it): a relay is stateless and restarted to take a new config, one
// replica at a time. The returned func stops catching.
func catchHUP(ctx context.Context, stderr io.Writer) func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-hup:
				fmt.Fprintln(stderr, "sitelink: SIGHUP: the relay does not reload; restart it to apply a new config")
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { signal.Stop(hup) }
}

// newLogger writes structured text logs to w. When w is the process's
// stderr and that is the journal's stream (JOURNAL_STREAM, as systemd sets
// it for a service), each line starts with its sd-daemon(3) priority
// ("<4>" for a warning), which journald takes as the entry's priority
// (SyslogLevelPrefix=yes, the default), so `journalctl -p warning` finds
// the warnings; the time is left out there, journald stamps every line.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	toJournal := false
	if f, ok := w.(*os.File); ok && f == os.Stderr {
		toJournal, _ = journal.StderrIsJournalStream()
	}
	return newLoggerTo(w, level, toJournal)
}

// newLoggerTo is newLogger with the journal's priority prefixes on or off.
func newLoggerTo(w io.Writer, level string, prefixed bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	if !prefixed {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
	}
	pw := &prioWriter{w: w}
	h := slog.NewTextHandler(pw, &slog.HandlerOptions{Level: l, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	return slog.New(journalHandler{Handler: h, pw: pw}), nil
}

// journalHandler gives each record's line its sd-daemon(3) priority prefix.
type journalHandler struct {
	slog.Handler // a TextHandler writing to pw
	pw           *prioWriter
}

func (h journalHandler) Handle(ctx context.Context, r slog.Record) error {
	// The text handler writes a record with one Write, during Handle:
	// the prefix is set for that Write under the writer's lock.
	h.pw.mu.Lock()
	defer h.pw.mu.Unlock()
	h.pw.prefix = priorityPrefix(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return journalHandler{Handler: h.Handler.WithAttrs(as), pw: h.pw}
}

func (h journalHandler) WithGroup(name string) slog.Handler {
	return journalHandler{Handler: h.Handler.WithGroup(name), pw: h.pw}
}

// prioWriter writes each line with the prefix of the record being handled.
type prioWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prioWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// priorityPrefix maps a slog level to syslog's priorities as sd-daemon(3)
// prefixes: error 3, warning 4, info 6, debug 7.
func priorityPrefix(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

// flags builds a FlagSet that reports errors instead of exiting.
func flags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sitelink "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
