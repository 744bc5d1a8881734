package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// relaySitelinkBinary builds the sitelink command of this tree into dir
// (or takes SITELINK_BENCH_SITELINK, a binary built beforehand): the
// relays of the group are `sitelink relay` processes, started from a
// relay config as systemd starts them.
func relaySitelinkBinary(ctx context.Context, dir string) (string, error) {
	if p := os.Getenv("SITELINK_BENCH_SITELINK"); p != "" {
		return p, nil
	}
	if *sitelinkFlag != "" {
		// A given binary, as for the process group: two builds of the
		// relay compared in alternating runs.
		return filepath.Abs(*sitelinkFlag)
	}
	bin := filepath.Join(dir, "sitelink")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/sitelink/sitelink/cmd/sitelink")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build sitelink (run from the module, or set SITELINK_BENCH_SITELINK): %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "   built sitelink in %v\n", time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// relayProcConfig is one replica's relay.yaml.
type relayProcConfig struct {
	bin, dir, id, prefix, broker string
	secrets                      relaySecrets
}

// relayProc is a running `sitelink relay`.
type relayProc struct {
	cmd    *exec.Cmd
	url    string // the public listener
	admin  string // the metrics listener
	log    string
	exited chan struct{}
}

// relayConfigYAML is the replica's configuration: the callback header
// required, as in production; the per-source rate limit raised (every
// request of the load comes from 127.0.0.1, as behind a load balancer)
// but left on, so that its check is paid; everything else the defaults.
// Nayax is never called here: its block only has to be valid.
func relayConfigYAML(c relayProcConfig, listen, metrics string) string {
	return fmt.Sprintf(`relay:
  id: %s
  listen: %q
  metrics_listen: %q
  callback_headers:
    - name: %s
      value_file: %s
  rate_limit: 1000000
  rate_burst: 1000000
  card_key_file: %s
mqtt:
  broker: %q
  topic_prefix: %s
nayax:
  base_url: http://127.0.0.1:9/api
  integrator_id: bench
  sign_key_file: %s
  token_id: 1
  token_secret_file: %s
`, c.id, listen, metrics, c.secrets.header[0], c.secrets.header0File, c.secrets.cardKey, c.broker, c.prefix,
		c.secrets.signKey, c.secrets.tokenSecret)
}

// relayStart starts a replica and waits until its /healthz counts n
// nodes and n terminals; learned is the time from exec to then.
func relayStart(ctx context.Context, c relayProcConfig, n int) (p *relayProc, learned time.Duration, err error) {
	for attempt := 0; ; attempt++ {
		p, learned, err = relayStartOnce(ctx, c, n)
		if err == nil || attempt == 2 || ctx.Err() != nil || !strings.Contains(err.Error(), "address already in use") {
			return p, learned, err
		}
	}
}

func relayStartOnce(ctx context.Context, c relayProcConfig, n int) (*relayProc, time.Duration, error) {
	listen, err := relayFreeAddr()
	if err != nil {
		return nil, 0, err
	}
	metrics, err := relayFreeAddr()
	if err != nil {
		return nil, 0, err
	}
	conf := filepath.Join(c.dir, c.id+".yaml")
	if err := os.WriteFile(conf, []byte(relayConfigYAML(c, listen, metrics)), 0o600); err != nil {
		return nil, 0, err
	}
	logPath := filepath.Join(c.dir, c.id+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	defer logf.Close()
	cmd := exec.Command(c.bin, "relay", "-config", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	relayDieWithParent(cmd)
	p := &relayProc{cmd: cmd, url: "http://" + listen, admin: "http://" + metrics, log: logPath, exited: make(chan struct{})}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var h struct {
			Nodes, Terminals int
		}
		resp, err := hc.Get(p.admin + "/healthz")
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && h.Nodes >= n && h.Terminals >= n {
				return p, time.Since(start), nil
			}
		}
		select {
		case <-p.exited:
			b, _ := os.ReadFile(logPath)
			return nil, 0, fmt.Errorf("sitelink relay %s exited: %s", c.id, relayTail(string(b)))
		case <-ctx.Done():
			p.Stop()
			return nil, 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, 0, fmt.Errorf("sitelink relay %s: routes not known after 3 min (healthz: %d nodes, %d terminals of %d)", c.id, h.Nodes, h.Terminals, n)
		}
	}
}

func (p *relayProc) pid() int { return p.cmd.Process.Pid }

// Stop ends the replica as systemd does (SIGTERM), then kills it if it
// lingers.
func (p *relayProc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// relayTail is the end of a replica's log, for an error.
func relayTail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}
