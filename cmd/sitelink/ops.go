package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/store"
)

// socketFlags adds -socket and -config and returns a resolver.
func socketFlags(fs interface {
	String(name, value, usage string) *string
}) func() (string, error) {
	sock := fs.String("socket", "", "daemon API socket `path`")
	cfg := fs.String("config", "", "take the socket path from this edge config `file`")
	return func() (string, error) {
		switch {
		case *sock != "":
			return *sock, nil
		case *cfg != "":
			path, err := config.EdgeAPISocket(*cfg)
			if err != nil {
				return "", fmt.Errorf("config %s: %w", *cfg, err)
			}
			return path, nil
		}
		return localapi.DefaultSocket, nil
	}
}

func cmdQuery(what string, args []string, stdout, stderr io.Writer) error {
	fs := flags(what, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	n := fs.Int("n", 50, "at most `N` rows (sessions, outbox; with -archive, 0 is all)")
	var arch archiveFlags
	if what == "sessions" {
		arch = addArchiveFlags(fs)
	}
	socket := socketFlags(fs)
	if pos, err := parseInterleaved(fs, args); err != nil {
		return exitCode(2)
	} else if len(pos) > 0 {
		fmt.Fprintf(stderr, "sitelink %s: unexpected %q (flags only; see sitelink %s -h)\n", what, pos[0], what)
		return exitCode(2)
	}
	if arch.on != nil {
		if *arch.on {
			return listArchive(arch, fs.Lookup("config").Value.String(), *n, *asJSON, stdout, stderr)
		}
		if *arch.since != "" || *arch.until != "" || *arch.dir != "" {
			fmt.Fprintln(stderr, "sitelink sessions: -since, -until and -archive-dir read the archive: add -archive")
			return exitCode(2)
		}
	}
	path, err := socket()
	if err != nil {
		return err
	}
	c := localapi.NewClient(path)
	var v any
	switch what {
	case "status":
		v, err = c.Status()
	case "stations":
		v, err = c.Stations()
	case "sessions":
		v, err = c.Sessions(*n)
	case "outbox":
		v, err = c.Outbox(*n)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, v)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch x := v.(type) {
	case localapi.Status:
		conn := "no (buffering)"
		if x.Connected {
			conn = "yes"
		}
		fmt.Fprintf(tw, "node\t%s\nversion\t%s\nconnected\t%s\nepoch\t%d\nstations\t%d\noutbox\t%d\npublished\t%d\n",
			x.Node, x.Version, conn, x.Epoch, x.Stations, x.OutboxDepth, x.Published)
		if cf := x.NodeIDConflict; cf != nil {
			fmt.Fprintf(tw, "node.id conflict\tYES: another daemon (instance %s, version %s) uses node id %s since %s, last seen %s ago; reconnecting only every few minutes. Give one of them its own node.id (README: Two controllers with one node.id)\n",
				dash(cf.OtherInstance), dash(cf.OtherVersion), x.Node, cf.Since.Local().Format(time.DateTime), time.Since(cf.LastSeen).Round(time.Second))
		}
	case []localapi.Station:
		fmt.Fprintln(tw, "STATION\tDRIVER\tCP\tCONTACTOR\tPOWER kW\tENERGY kWh\tFAULT\tSESSION")
		for _, s := range x {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f\t%.3f\t%s\t%s\n", s.Number, s.Driver, dash(s.CPState), onOff(s.Contactor),
				s.PowerW/1000, s.EnergyWh/1000, dash(s.Fault), dash(s.Session))
		}
	case []localapi.Session:
		printSessions(tw, x)
	case []localapi.OutboxEntry:
		fmt.Fprintln(tw, "SEQ\tID\tTYPE\tSTATUS\tATTEMPTS\tAGE\tSESSION")
		for _, e := range x {
			seq := "-"
			if e.Seq != 0 {
				seq = strconv.FormatUint(e.Seq, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", seq, e.ID, e.Type, e.Status, e.Attempts, time.Since(e.CreatedAt).Round(time.Second), dash(e.Session))
		}
	}
	return nil
}

const simUsage = "usage: sitelink sim -station N plug|unplug|fault [-reason TEXT]|clear|power KW|start [-json]\n" +
	"       (flags before or after the action)"

// cmdSim drives a simulated station. Flags may come before or after the
// action word: `sim -station 5 plug` and `sim plug -station 5` are one.
func cmdSim(args []string, stdout, stderr io.Writer) error {
	fs := flags("sim", stderr)
	station := fs.String("station", "", "station `number`")
	reason := fs.String("reason", "", "fault reason (fault)")
	asJSON := fs.Bool("json", false, "print the request done as JSON")
	socket := socketFlags(fs)
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return exitCode(2)
	}
	if *station == "" || len(rest) == 0 {
		fmt.Fprintln(stderr, simUsage)
		return exitCode(2)
	}
	req := localapi.SimRequest{Station: *station, Action: rest[0], Reason: *reason}
	if req.Action == "power" {
		if len(rest) != 2 {
			fmt.Fprintln(stderr, "usage: sitelink sim -station N power KW")
			return exitCode(2)
		}
		kw, err := strconv.ParseFloat(rest[1], 64)
		if err != nil || math.IsNaN(kw) || math.IsInf(kw, 0) || kw < 0 {
			// The upper bound is the station's (stations[].max_power_kw):
			// the daemon refuses beyond it, with the range.
			fmt.Fprintf(stderr, "sitelink sim: power %q: want a number of kW from 0 to the station's max_power_kw\n", rest[1])
			return exitCode(2)
		}
		req.KW = kw
	} else if len(rest) != 1 {
		fmt.Fprintln(stderr, simUsage)
		return exitCode(2)
	}
	if *reason != "" && req.Action != "fault" {
		fmt.Fprintln(stderr, "sitelink sim: -reason goes with fault")
		return exitCode(2)
	}
	if n := utf8.RuneCountInString(*reason); n > localapi.MaxSimReason {
		fmt.Fprintf(stderr, "sitelink sim: -reason: %d characters, at most %d\n", n, localapi.MaxSimReason)
		return exitCode(2)
	}
	path, err := socket()
	if err != nil {
		return err
	}
	if err := localapi.NewClient(path).Sim(req); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, req)
	}
	fmt.Fprintf(stdout, "station %s: %s\n", req.Station, req.Action)
	return nil
}

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) >= 1 && args[0] == "show" {
		return cmdConfigShow(args[1:], stdout, stderr)
	}
	if len(args) >= 1 && args[0] == "check" {
		return cmdConfigCheck(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: sitelink config check [-elsewhere] [-json] FILE | sitelink config show [-json] [-socket PATH | -config FILE]")
	return exitCode(2)
}

// printSessions writes the sessions table of `sitelink sessions`.
func printSessions(tw io.Writer, ss []localapi.Session) {
	fmt.Fprintln(tw, "SPARK TRANSACTION\tNAYAX ID\tSTATION\tSTATE\tENERGY Wh\tAUTHORIZED\tAMOUNT\tNAYAX\tREASON\tUPDATED")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\n", s.SparkTransactionID, nayaxID(s.NayaxTransactionID),
			s.Station, s.State, s.EnergyWh, money(s.AuthorizedMinor, s), money(s.AmountMinor, s), nayaxState(s), dash(s.StopReason), s.UpdatedAt.Local().Format(time.DateTime))
	}
}

// nayaxState summarizes the money side: the pending request or the last
// answer.
func nayaxState(s localapi.Session) string {
	switch {
	case s.Request != nil:
		return fmt.Sprintf("%s sent x%d", s.Request.Call, s.Request.Attempts)
	case s.LastAnswer != nil && s.LastAnswer.Code != 0:
		return fmt.Sprintf("%s %s (%d)", s.LastAnswer.Call, s.LastAnswer.Outcome, s.LastAnswer.Code)
	case s.LastAnswer != nil:
		return s.LastAnswer.Call + " " + s.LastAnswer.Outcome
	}
	return "-"
}

func cmdStart(args []string, stdout, stderr io.Writer) error {
	fs := flags("start", stderr)
	station := fs.String("station", "", "station `number`")
	amount := fs.Float64("amount", 0, "amount to pre-authorize (default: policy.start_amount)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	socket := socketFlags(fs)
	if pos, err := parseInterleaved(fs, args); err != nil {
		return exitCode(2)
	} else if len(pos) > 0 || math.IsNaN(*amount) || *amount < 0 {
		fmt.Fprintln(stderr, "usage: sitelink start -station N [-amount X] [-json] (X: 0 or more; 0 is policy.start_amount)")
		return exitCode(2)
	}
	if *station == "" {
		fmt.Fprintln(stderr, "usage: sitelink start -station N [-amount X]")
		return exitCode(2)
	}
	path, err := socket()
	if err != nil {
		return err
	}
	res, err := localapi.NewClient(path).Start(localapi.StartRequest{Station: *station, Amount: *amount})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "station %s: Remote Start requested, SparkTransactionId %s; present the card at the terminal\n", res.Station, res.SparkTransactionID)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func nayaxID(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}

// cmdStop ends a station's session from the site (as its stop button).
func cmdStop(args []string, stdout, stderr io.Writer) error {
	fs := flags("stop", stderr)
	station := fs.String("station", "", "station `number`")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	socket := socketFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitCode(2)
	}
	if *station == "" || len(pos) > 0 {
		fmt.Fprintln(stderr, "usage: sitelink stop -station N [-json]")
		return exitCode(2)
	}
	path, err := socket()
	if err != nil {
		return err
	}
	if err := localapi.NewClient(path).Stop(*station); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, localapi.StationRequest{Station: *station})
	}
	fmt.Fprintf(stdout, "station %s: stopped; the session settles or cancels with Nayax\n", *station)
	return nil
}

// cmdConfigShow prints the running daemon's effective configuration and
// where each value came from (default, file, group or node). Without a
// daemon to ask, a -config file is shown alone, and said to be.
func cmdConfigShow(args []string, stdout, stderr io.Writer) error {
	fs := flags("config show", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	sock := fs.String("socket", "", "daemon API socket `path`")
	file := fs.String("config", "", "edge config `file` (its socket is asked; without a daemon the file alone is shown)")
	if pos, err := parseInterleaved(fs, args); err != nil {
		return exitCode(2)
	} else if len(pos) > 0 {
		fmt.Fprintf(stderr, "sitelink config show: unexpected %q\n", pos[0])
		return exitCode(2)
	}
	path := *sock
	if path == "" {
		path = localapi.DefaultSocket
	}
	var fileErr error
	if *sock == "" && *file != "" {
		c, err := config.LoadEdge(*file)
		if err != nil {
			return fmt.Errorf("config %s:\n%w", *file, err)
		}
		path = c.Node.APISocket
	}
	v, err := localapi.NewClient(path).Config()
	if err != nil {
		if *file == "" {
			return err
		}
		// No daemon: what the file alone gives.
		fileErr = err
		data, rerr := os.ReadFile(*file)
		if rerr != nil {
			return rerr
		}
		cfg, prov, perr := config.ParseLayers(config.Layers{File: data})
		if perr != nil {
			return fmt.Errorf("config %s:\n%w", *file, perr)
		}
		v = localapi.ConfigView{Node: cfg.Node.ID, File: *file}
		for _, st := range config.Settings(cfg, prov) {
			v.Settings = append(v.Settings, localapi.Setting{Key: st.Key, Value: st.Value, Source: st.Source})
		}
	}
	if *asJSON {
		return printJSON(stdout, v)
	}
	if fileErr != nil {
		fmt.Fprintf(stdout, "# daemon not reachable (%v): the file alone, without the fleet's configuration\n", fileErr)
	}
	fmt.Fprintf(stdout, "# node %s, config_version %d (group %d, node %d)", v.Node, v.Version, v.GroupVersion, v.NodeVersion)
	if v.File != "" {
		fmt.Fprintf(stdout, ", file %s", v.File)
	}
	fmt.Fprintln(stdout)
	if len(v.WaitingStations) > 0 {
		fmt.Fprintf(stdout, "# station changes waiting for a session to end: %v\n", v.WaitingStations)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE")
	for _, st := range v.Settings {
		val, _ := json.Marshal(st.Value)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", st.Key, val, st.Source)
	}
	return tw.Flush()
}

// money writes a session's amount with its currency's decimals ("0.50
// EUR", "3000 JPY"), from the ledger's minor units.
func money(minor int64, s localapi.Session) string {
	return strings.TrimSpace(store.FormatFixed(minor, s.DecimalPlace) + " " + s.Currency)
}
