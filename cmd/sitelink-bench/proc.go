package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Helpers for the figures measured on processes: building `sitelink` and
// the bare process it is compared with (floorproc), starting them under a
// fake service manager, reading their memory.

var sitelinkFlag = flag.String("sitelink", "", "measure this `sitelink` binary instead of building one from the source")

// procBuildMu serializes builds: groups run one after the other, but
// the tests may call run more than once.
var (
	procBuildMu sync.Mutex
	procBuilt   = map[string]string{} // flags and package → binary
)

// procCommands are the commands the process figures run.
var procCommands = []string{"cmd/sitelink", "cmd/sitelink-bench/floorproc"}

// procSitelink returns the `sitelink` binary to measure, -sitelink or one
// built from this module (procBuild), and how it came.
func procSitelink(dir string, release bool) (bin, how string, err error) {
	if *sitelinkFlag != "" {
		return *sitelinkFlag, "the -sitelink binary", nil
	}
	bin, err = procBuild(dir, "cmd/sitelink", release)
	how = "go build"
	if release {
		how = "release build"
	}
	return bin, how, err
}

// procBuild returns pkg (one of procCommands) built into dir, building
// all of them at once the first time in a run. A full run builds them as
// `make build` does (static, trimmed, stripped); a short one the plain
// way, which reuses the build cache of `go vet` and `go test`.
func procBuild(dir, pkg string, release bool) (string, error) {
	procBuildMu.Lock()
	defer procBuildMu.Unlock()
	key := func(pkg string) string { return fmt.Sprint(release, pkg) }
	if p, ok := procBuilt[key(pkg)]; ok {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command to build %s with: %w", pkg, err)
	}
	out := filepath.Join(dir, "bin")
	args := []string{"build", "-o", out + string(filepath.Separator)}
	env := os.Environ()
	if release {
		args = append(args, "-trimpath", "-ldflags", "-s -w")
		env = append(env, "CGO_ENABLED=0")
	}
	for _, c := range procCommands {
		args = append(args, "github.com/sitelink/sitelink/"+c)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build (run inside the module): %v\n%s", err, b)
	}
	for _, c := range procCommands {
		procBuilt[key(c)] = filepath.Join(out, filepath.Base(c))
	}
	return procBuilt[key(pkg)], nil
}

// procNotify is a fake service manager's notify socket.
type procNotify struct {
	Path string
	own  string // a directory of its own, when dir's path was too long
	conn *net.UnixConn
	msgs chan procMsg
}

type procMsg struct {
	at  time.Time
	msg string
}

func procListenNotify(dir string) (*procNotify, error) {
	// A unix socket path must stay under ~108 bytes.
	path, own := filepath.Join(dir, "notify"), ""
	if len(path) > 100 {
		d, err := os.MkdirTemp("", "sb")
		if err != nil {
			return nil, err
		}
		path, own = filepath.Join(d, "notify"), d
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	n := &procNotify{Path: path, own: own, conn: conn, msgs: make(chan procMsg, 256)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			m := procMsg{time.Now(), string(buf[:k])}
			select {
			case n.msgs <- m:
			default:
			}
		}
	}()
	return n, nil
}

// drain forgets what earlier processes sent.
func (n *procNotify) drain() {
	for {
		select {
		case <-n.msgs:
		default:
			return
		}
	}
}

// await returns when a datagram holding line arrived.
func (n *procNotify) await(line string, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				return time.Time{}, errors.New("notify socket closed")
			}
			if slices.Contains(strings.Split(m.msg, "\n"), line) {
				return m.at, nil
			}
		case <-deadline:
			return time.Time{}, fmt.Errorf("no %s within %v", line, timeout)
		}
	}
}

func (n *procNotify) Close() {
	_ = n.conn.Close()
	_ = os.Remove(n.Path)
	if n.own != "" {
		_ = os.RemoveAll(n.own)
	}
}

// proc is a started process and its log.
type proc struct {
	cmd   *exec.Cmd
	log   *bytes.Buffer
	start time.Time
	done  chan struct{}
}

// procStart starts bin with args and env added, NOTIFY_SOCKET set to n.
func procStart(n *procNotify, bin string, args []string, env ...string) (*proc, error) {
	p := &proc{cmd: exec.Command(bin, args...), log: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="+n.Path), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM and waits, then kills.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// procMem is a process's resident memory from /proc/PID/status, bytes.
type procMem struct {
	RSS, Anon, File int64
}

func procMemOf(pid int) (procMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	var m procMem
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "RssAnon":
			m.Anon = n << 10
		case "RssFile":
			m.File = n << 10
		}
	}
	if m.RSS == 0 {
		return m, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// procDropCaches empties the page cache so that a start reads its ledger
// from the disk. Only root may; it reports whether it did.
func procDropCaches() bool {
	if os.Geteuid() != 0 {
		return false
	}
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200) == nil
}
