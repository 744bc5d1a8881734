package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sitelink/sitelink/daemon/localapi"
	"github.com/sitelink/sitelink/daemon/metrics/metricstest"
	"github.com/sitelink/sitelink/daemon/mqtttest"
)

// site is an edge config file in a temporary directory, rewritten by the
// tests between reloads (the data dir and socket stay put).
type site struct {
	dir, cfg, socket, broker string
}

// siteConf is what a test varies in the file; empty fields keep the values
// writeConfig uses.
type siteConf struct {
	id            string // node.id
	price         string // tariff.price_per_kwh
	plugTimeout   string // policy.plug_timeout
	metricsListen string // node.metrics_listen, left out when empty
	extra         string // raw YAML appended to the file
}

func newSite(t *testing.T, broker string) *site {
	t.Helper()
	dir := t.TempDir()
	return &site{dir: dir, cfg: filepath.Join(dir, "sitelink.yaml"), socket: filepath.Join(dir, "api.sock"), broker: broker}
}

func (s *site) write(t *testing.T, c siteConf) {
	t.Helper()
	if c.id == "" {
		c.id = node
	}
	if c.price == "" {
		c.price = "0.39"
	}
	if c.plugTimeout == "" {
		c.plugTimeout = "120s"
	}
	listen := ""
	if c.metricsListen != "" {
		listen = fmt.Sprintf(", metrics_listen: %q", c.metricsListen)
	}
	// contactor_timeout and mqtt.topic_prefix are deliberately left to
	// their defaults.
	y := fmt.Sprintf(`node: {id: %s, data_dir: %s, api_socket: %s%s}
mqtt: {broker: %q, reconnect_min: 100ms, reconnect_max: 500ms, connect_timeout: 3s}
terminals:
  - {machine_id: 71234996, hw_serial: "0434334921100366", flow: pre-authorization, stations: ["5"]}
stations:
  - {number: "5", driver: sim, sim: {vehicle: present, power_kw: 22, time_scale: 600}}
policy: {plug_timeout: %s, min_energy_wh: 10, energy_checkpoint: 200ms, result_timeout: 2s, retry_min: 100ms, retry_max: 500ms}
tariff: {currency: EUR, decimal_place: 2, price_per_kwh: %s}
%s`, c.id, filepath.Join(s.dir, "data"), s.socket, listen, s.broker, c.plugTimeout, c.price, c.extra)
	// Written whole and renamed, as an editor or config management would:
	// the daemon never reads half a file.
	tmp := s.cfg + ".tmp"
	if err := os.WriteFile(tmp, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.cfg); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a log that can be read while the daemon writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// liveDaemon is a `sitelink run` process whose log can be read while it
// runs and whose exit is observed without blocking.
type liveDaemon struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid once done is closed
}

// startLive starts `sitelink run` on s and waits until it is connected.
func startLive(t *testing.T, s *site) *liveDaemon {
	t.Helper()
	return startLiveEnv(t, s, false)
}

// startLiveEnv is startLive with env added to the daemon's environment;
// with journal, its stderr is a pipe that JOURNAL_STREAM names, as
// systemd's journal stream would be.
func startLiveEnv(t *testing.T, s *site, journal bool, env ...string) *liveDaemon {
	t.Helper()
	p := &liveDaemon{log: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "run", "-config", s.cfg, "-log-level", "debug")
	p.cmd.Env = append(append(os.Environ(), "SITELINK_TEST_MAIN=1", "JOURNAL_STREAM="), env...)
	p.cmd.Stderr = p.log
	var copied chan struct{}
	if journal {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(w.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		p.cmd.Env = append(p.cmd.Env, fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
		p.cmd.Stderr = w
		copied = make(chan struct{})
		go func() { defer close(copied); _, _ = io.Copy(p.log, r); r.Close() }()
		defer w.Close() // the child holds its own copy
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		if copied != nil {
			<-copied // the whole log is read
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", p.log.String())
		}
	})
	api := localapi.NewClient(s.socket)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if st, err := api.Status(); err == nil && st.Connected {
			return p
		}
		if !p.running() {
			t.Fatalf("daemon exited before connecting: %v", p.err)
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *liveDaemon) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *liveDaemon) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// stop sends SIGTERM and requires a clean exit (status 0).
func (p *liveDaemon) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not exit within 15s of SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v", p.err)
	}
}

// logLines returns the log lines containing s.
func (p *liveDaemon) logLines(s string) []string {
	var out []string
	for l := range strings.Lines(p.log.String()) {
		if strings.Contains(l, s) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// setting returns key's value (as fmt prints it) and source in v.
func setting(v localapi.ConfigView, key string) (value, source string) {
	for _, s := range v.Settings {
		if s.Key == key {
			return fmt.Sprint(s.Value), s.Source
		}
	}
	return "<absent>", "<absent>"
}

// A changed file applies on SIGHUP; a bad one, or one that changes what
// only a restart may, is refused with its key in the log while the daemon
// keeps running, connected, on the configuration it had.
func TestSIGHUPReload(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t, b.URL)
	s.write(t, siteConf{})
	p := startLive(t, s)
	api := localapi.NewClient(s.socket)

	v, err := api.Config()
	if err != nil {
		t.Fatal(err)
	}
	if val, src := setting(v, "tariff.price_per_kwh"); val != "0.39" || src != "file" {
		t.Fatalf("before reload: tariff.price_per_kwh = %s (%s), want 0.39 (file)", val, src)
	}

	good := siteConf{price: "0.55", plugTimeout: "90s"}
	s.write(t, good)
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "tariff.price_per_kwh 0.55 from the file", func() bool {
		v, err := api.Config()
		val, src := setting(v, "tariff.price_per_kwh")
		return err == nil && val == "0.55" && src == "file"
	})
	if v, err = api.Config(); err != nil {
		t.Fatal(err)
	}
	if val, src := setting(v, "policy.plug_timeout"); val != "1m30s" || src != "file" {
		t.Fatalf("after reload: policy.plug_timeout = %s (%s), want 1m30s (file)", val, src)
	}
	applied := v

	bad := []struct {
		name string
		conf siteConf
		want []string // in the refusal's log line
	}{
		{"unknown key", siteConf{price: "0.55", plugTimeout: "90s", extra: "tarif: {price_per_kwh: 0.70}\n"},
			[]string{"tarif: unknown key"}},
		{"negative price", siteConf{price: "-1", plugTimeout: "90s"},
			[]string{"tariff.price_per_kwh"}},
		{"node.id changed", siteConf{id: "site-other", price: "0.70", plugTimeout: "90s"},
			[]string{"node.id", "cannot change while running"}},
		{"metrics_listen added", siteConf{price: "0.70", plugTimeout: "90s", metricsListen: fmt.Sprintf("127.0.0.1:%d", freePort(t))},
			[]string{"node.metrics_listen", "cannot change while running"}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			before := len(p.logLines("reload refused"))
			s.write(t, c.conf)
			p.signal(t, syscall.SIGHUP)
			waitFor(t, "the reload's refusal in the log", func() bool {
				return len(p.logLines("reload refused")) > before || !p.running()
			})
			if !p.running() {
				t.Fatalf("daemon exited after a bad reload: %v", p.err)
			}
			line := p.logLines("reload refused")[before]
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("refusal lacks %q: %s", w, line)
				}
			}
			st, err := api.Status()
			if err != nil || !st.Connected || st.Node != node {
				t.Fatalf("status after a refused reload: %+v %v", st, err)
			}
			v, err := api.Config()
			if err != nil {
				t.Fatal(err)
			}
			if v.Node != node {
				t.Errorf("config node = %q, want %q", v.Node, node)
			}
			for _, k := range []string{"node.id", "tariff.price_per_kwh", "policy.plug_timeout", "node.metrics_listen"} {
				gv, gs := setting(v, k)
				wv, ws := setting(applied, k)
				if gv != wv || gs != ws {
					t.Errorf("%s after a refused reload = %s (%s), want %s (%s)", k, gv, gs, wv, ws)
				}
			}
		})
	}

	// The refusals left nothing stuck: a good file still applies.
	s.write(t, siteConf{price: "0.61", plugTimeout: "90s"})
	p.signal(t, syscall.SIGHUP)
	waitFor(t, "tariff.price_per_kwh 0.61 after the refusals", func() bool {
		v, err := api.Config()
		val, _ := setting(v, "tariff.price_per_kwh")
		return err == nil && val == "0.61"
	})

	p.stop(t)
	log := p.log.String()
	for _, w := range []string{"SIGHUP: reloading the configuration", "configuration reloaded", "reload refused",
		"tarif: unknown key", "tariff.price_per_kwh", "node.id: cannot change while running"} {
		if !strings.Contains(log, w) {
			t.Errorf("daemon log lacks %q", w)
		}
	}
	if n := len(p.logLines("reload refused")); n != len(bad) {
		t.Errorf("%d refusals in the log, want %d", n, len(bad))
	}
}

// configShow runs `sitelink config show args...` in-process.
func configShow(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(append([]string{"config", "show"}, args...), &out, &errb)
	return out.String(), errb.String(), err
}

// showTable parses config show's table: the header's fields and each key's
// value and source.
func showTable(t *testing.T, out string) (header []string, rows map[string][2]string) {
	t.Helper()
	rows = map[string][2]string{}
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		if len(f) < 3 {
			t.Fatalf("table line with fewer than 3 columns: %q", l)
		}
		rows[f[0]] = [2]string{strings.Join(f[1:len(f)-1], " "), f[len(f)-1]}
	}
	return header, rows
}

func TestConfigShow(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t, b.URL)
	s.write(t, siteConf{})
	p := startLive(t, s)

	// The values as the table prints them (JSON) and their sources.
	want := []struct{ key, value, source string }{
		{"node.id", `"` + node + `"`, "file"},
		{"tariff.price_per_kwh", "0.39", "file"},
		{"policy.plug_timeout", `"2m0s"`, "file"},
		{"policy.contactor_timeout", `"2s"`, "default"},
		{"mqtt.topic_prefix", `"sitelink/v1"`, "default"},
	}
	check := func(t *testing.T, args []string, fileAlone bool) {
		t.Helper()
		out, errOut, err := configShow(args...)
		if err != nil {
			t.Fatalf("config show %v: %v\n%s", args, err, errOut)
		}
		if got := strings.Contains(out, "daemon not reachable"); got != fileAlone {
			t.Errorf("note that the daemon is not reachable: %v, want %v:\n%s", got, fileAlone, out)
		}
		if !strings.Contains(out, "# node "+node) {
			t.Errorf("no node line:\n%s", out)
		}
		header, rows := showTable(t, out)
		if strings.Join(header, " ") != "KEY VALUE SOURCE" {
			t.Fatalf("header %q, want KEY VALUE SOURCE:\n%s", header, out)
		}
		for _, w := range want {
			if got := rows[w.key]; got != [2]string{w.value, w.source} {
				t.Errorf("%s: value %s source %s, want %s %s", w.key, got[0], got[1], w.value, w.source)
			}
		}

		out, errOut, err = configShow(append([]string{"-json"}, args...)...)
		if err != nil {
			t.Fatalf("config show -json %v: %v\n%s", args, err, errOut)
		}
		var v localapi.ConfigView
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("-json is not a ConfigView: %v\n%s", err, out)
		}
		if v.Node != node || v.File != s.cfg || len(v.Settings) == 0 {
			t.Fatalf("-json: node %q file %q, %d settings; want %q, %q, some", v.Node, v.File, len(v.Settings), node, s.cfg)
		}
		if val, src := setting(v, "tariff.price_per_kwh"); val != "0.39" || src != "file" {
			t.Errorf("-json: tariff.price_per_kwh = %s (%s), want 0.39 (file)", val, src)
		}
	}

	for _, c := range []struct {
		name string
		args []string
	}{
		{"socket", []string{"-socket", s.socket}},
		{"socket from the config file", []string{"-config", s.cfg}},
	} {
		t.Run("running/"+c.name, func(t *testing.T) { check(t, c.args, false) })
	}

	p.stop(t)
	t.Run("stopped/file alone", func(t *testing.T) { check(t, []string{"-config", s.cfg}, true) })

	fails := []struct {
		name string
		args []string
	}{
		{"dead socket", []string{"-socket", s.socket}},
		{"missing socket", []string{"-socket", filepath.Join(s.dir, "nope.sock")}},
		{"missing file", []string{"-config", filepath.Join(s.dir, "nope.yaml")}},
	}
	if _, err := os.Stat(localapi.DefaultSocket); err != nil {
		fails = append(fails, struct {
			name string
			args []string
		}{"default socket", nil})
	}
	for _, c := range fails {
		t.Run("stopped/"+c.name, func(t *testing.T) {
			out, _, err := configShow(c.args...)
			if err == nil {
				t.Fatalf("config show %v succeeded without a daemon or file:\n%s", c.args, out)
			}
			if out != "" {
				t.Errorf("config show %v printed a configuration it does not have:\n%s", c.args, out)
			}
		})
	}
}

// node.metrics_listen serves /metrics over TCP and nothing else: the
// control API stays on the socket.
func TestMetricsListen(t *testing.T) {
	b := mqtttest.Start(t)
	s := newSite(t, b.URL)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // chain_test.go
	s.write(t, siteConf{metricsListen: addr})
	startLive(t, s)

	v, err := localapi.NewClient(s.socket).Config()
	if err != nil {
		t.Fatal(err)
	}
	if val, src := setting(v, "node.metrics_listen"); val != addr || src != "file" {
		t.Errorf("node.metrics_listen = %s (%s), want %s (file)", val, src, addr)
	}

	hc := &http.Client{Timeout: 5 * time.Second}
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/metrics", http.StatusOK},
		{"GET", "/v1/status", http.StatusNotFound},
		{"GET", "/v1/config", http.StatusNotFound},
		{"GET", "/v1/sessions", http.StatusNotFound},
		{"POST", "/v1/stop", http.StatusNotFound},
		{"POST", "/v1/start", http.StatusNotFound},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req, err := http.NewRequest(c.method, "http://"+addr+c.path, strings.NewReader(`{"station":"5"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.code {
				t.Fatalf("status %d, want %d:\n%s", resp.StatusCode, c.code, body)
			}
			if c.code != http.StatusOK {
				return
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			samples := 0
			for l := range strings.Lines(string(body)) {
				l = strings.TrimSpace(l)
				if l == "" || strings.HasPrefix(l, "#") {
					continue
				}
				samples++
				// The daemon's own, and the process's (process_, go_).
				if !strings.HasPrefix(l, "sitelink_") && !strings.HasPrefix(l, "process_") && !strings.HasPrefix(l, "go_") {
					t.Errorf("sample without the sitelink_, process_ or go_ prefix: %q", l)
				}
			}
			metricstest.Promtool(t, string(body))
			for _, w := range []string{"sitelink_connected 1\n", `sitelink_station_contactor{station="5"} `, "# TYPE sitelink_outbox_depth gauge\n"} {
				if !strings.Contains(string(body), w) {
					t.Errorf("/metrics lacks %q", w)
				}
			}
			if samples == 0 {
				t.Fatalf("no samples:\n%s", body)
			}
		})
	}
}
