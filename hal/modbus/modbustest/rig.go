package modbustest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The rig runs Debian's binaries by absolute path: a python3 first on PATH
// (a virtualenv) may lack or shadow python3-pymodbus.
const (
	socatPath  = "/usr/bin/socat"
	pythonPath = "/usr/bin/python3"
	// Wait bounds rig start-up and each command answer, generous for
	// loaded CI machines.
	Wait = 20 * time.Second
	// Baud is the bit rate slave.py serves at (8N1).
	Baud = 19200
	// BusTimeout is a Modbus response timeout that suits the rig:
	// pymodbus on a loaded machine can take hundreds of milliseconds.
	BusTimeout = 2 * time.Second
)

// requireEnv makes a missing rig a failure instead of a skip.
const requireEnv = "SITELINK_REQUIRE_MODBUS"

var (
	// ErrSlave means slave.py answered a command with "err ...".
	ErrSlave = errors.New("pymodbus slave refused the command")
	// ErrNoAnswer means slave.py exited or did not answer within Wait.
	ErrNoAnswer = errors.New("pymodbus slave did not answer")
)

var (
	pymodbusOnce sync.Once
	pymodbusErr  error
)

// Rig is a pty pair with the pymodbus slave on its far end.
type Rig struct {
	// Port is the pty path our side opens (as BusConfig.Port, at Baud).
	Port string

	t     testing.TB
	mu    sync.Mutex // one command at a time
	stdin io.WriteCloser
	lines chan string
	stops []func() // socat's, the slave's: Stop
}

// Require skips t when socat or pymodbus is missing, or fails it when
// SITELINK_REQUIRE_MODBUS=1. Start calls it; tests that only need
// PTYPair call it themselves.
func Require(t testing.TB) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s (%s=1)", msg, requireEnv)
		}
		t.Skipf("%s; install socat and python3-pymodbus python3-serial-asyncio", msg)
	}
	if _, err := os.Stat(socatPath); err != nil {
		missing("no socat: %v", err)
	}
	pymodbusOnce.Do(func() {
		out, err := exec.Command(pythonPath, "-c", "import pymodbus.server, serial_asyncio").CombinedOutput()
		if err != nil {
			pymodbusErr = fmt.Errorf("%s cannot import pymodbus.server: %v: %s", pythonPath, err, bytes.TrimSpace(out))
		}
	})
	if pymodbusErr != nil {
		missing("%v", pymodbusErr)
	}
}

// Start brings up the rig for t and tears it down in t.Cleanup. It skips
// or fails t as Require does.
func Start(t testing.TB) *Rig {
	t.Helper()
	return StartAt(t, "")
}

// StartAt is Start with the pty our side opens at the path port (a
// symbolic link socat makes, which must not exist while it runs), so that
// a test can open port before the rig exists (a USB adapter not plugged
// in yet) or start a rig again on the same port after Stop. Empty port
// means a fresh temporary path.
func StartAt(t testing.TB, port string) *Rig {
	t.Helper()
	Require(t)
	script, err := slavePath()
	if err != nil {
		missingScript(t, err)
	}
	dir := t.TempDir()
	if port == "" {
		port = filepath.Join(dir, "a")
	}
	a, b := port, filepath.Join(dir, "b")
	stopSocat := ptyPairAt(t, a, b)
	cmd := exec.Command(pythonPath, script, b)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	_, stopSlave := startProcess(t, cmd, "pymodbus slave")
	r := &Rig{Port: a, t: t, stdin: stdin, lines: make(chan string, 16), stops: []func(){stopSocat, stopSlave}}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	// EOF on stdin stops the slave; runs before startProcess's kill.
	t.Cleanup(func() { _ = stdin.Close() })
	line, err := r.read()
	if err != nil {
		t.Fatalf("start pymodbus slave: %v", err)
	}
	if line != "ready" {
		t.Fatalf("pymodbus slave said %q, want ready", line)
	}
	return r
}

// Stop unplugs the adapter: socat ends (SIGTERM), so the pty our side has
// open hangs up (reads and writes fail with EIO) and Port disappears;
// then the slave ends. It returns once both have exited. The Rig's
// commands fail afterwards; StartAt on the same Port plugs a new one in.
func (r *Rig) Stop() {
	r.t.Helper()
	for _, stop := range r.stops {
		stop()
	}
	_ = r.stdin.Close()
	if _, err := os.Lstat(r.Port); err == nil {
		r.t.Fatalf("%s still exists after socat exited", r.Port)
	}
}

func missingScript(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%v (%s=1)", err, requireEnv)
	}
	t.Skip(err)
}

// Do sends one command line to slave.py (e.g. "setf 1 ir 0x0048 12.5",
// "get 3 co 400 1"; see slave.py) and returns its answer without the
// leading "ok": "" for a set, the values for a get. An "err ..." answer
// is ErrSlave. Safe for concurrent use.
func (r *Rig) Do(cmd string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := fmt.Fprintln(r.stdin, cmd); err != nil {
		return "", fmt.Errorf("slave %q: %w", cmd, err)
	}
	line, err := r.read()
	if err != nil {
		return "", fmt.Errorf("slave %q: %w", cmd, err)
	}
	if line != "ok" && !strings.HasPrefix(line, "ok ") {
		return "", fmt.Errorf("slave %q: %w: %s", cmd, ErrSlave, line)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "ok")), nil
}

// SetFloat stores v as a float32, high word first, at addr of table
// ("co", "di", "hr" or "ir") of unit.
func (r *Rig) SetFloat(unit int, table string, addr int, v float64) {
	r.t.Helper()
	r.must(fmt.Sprintf("setf %d %s %d %v", unit, table, addr, v))
}

// SetU16 stores the words v from addr on (0 or 1 for "co" and "di").
func (r *Rig) SetU16(unit int, table string, addr int, v ...int) {
	r.t.Helper()
	cmd := fmt.Sprintf("set %d %s %d", unit, table, addr)
	for _, w := range v {
		cmd += fmt.Sprintf(" %d", w)
	}
	r.must(cmd)
}

// Mute makes unit stop answering, as a meter that lost power: requests
// to it time out.
func (r *Rig) Mute(unit int) {
	r.t.Helper()
	r.must(fmt.Sprintf("mute %d", unit))
}

// Unmute makes unit answer again.
func (r *Rig) Unmute(unit int) {
	r.t.Helper()
	r.must(fmt.Sprintf("unmute %d", unit))
}

func (r *Rig) must(cmd string) {
	r.t.Helper()
	if _, err := r.Do(cmd); err != nil {
		r.t.Fatal(err)
	}
}

func (r *Rig) read() (string, error) {
	select {
	case line, ok := <-r.lines:
		if !ok {
			return "", fmt.Errorf("%w: it exited", ErrNoAnswer)
		}
		return line, nil
	case <-time.After(Wait):
		return "", fmt.Errorf("%w within %v", ErrNoAnswer, Wait)
	}
}

// PTYPair runs socat with two linked ptys for t and returns their paths.
// Call Require first.
func PTYPair(t testing.TB) (a, b string) {
	t.Helper()
	dir := t.TempDir()
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	ptyPairAt(t, a, b)
	return a, b
}

// ptyPairAt runs socat with two linked ptys at a and b for t, and returns
// what stops it early.
func ptyPairAt(t testing.TB, a, b string) (stop func()) {
	t.Helper()
	cmd := exec.Command(socatPath, "-d", "-d",
		"pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	log, stop := startProcess(t, cmd, "socat")
	ready := make(chan struct{})
	go func() {
		// socat says this once both ptys exist; keep draining after.
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			_, _ = log.Write(append(sc.Bytes(), '\n'))
			if strings.Contains(sc.Text(), "starting data transfer loop") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	t.Cleanup(func() { _ = pw.Close() })
	select {
	case <-ready:
	case <-time.After(Wait):
		t.Fatalf("socat did not set up the pty pair within %v", Wait)
	}
	return stop
}

// startProcess starts cmd with its stderr collected, kills it in cleanup
// and logs its stderr if the test failed. stop ends it earlier: SIGTERM
// (socat removes its links), SIGKILL after Wait; it returns once the
// process exited.
func startProcess(t testing.TB, cmd *exec.Cmd, name string) (_ *syncBuffer, stop func()) {
	t.Helper()
	stderr := &syncBuffer{}
	if cmd.Stderr == nil {
		cmd.Stderr = stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	waited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(waited) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
			return
		case <-time.After(Wait):
		}
		_ = cmd.Process.Kill()
		<-waited
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-waited:
		case <-time.After(Wait):
			t.Errorf("%s (pid %d) did not exit after kill", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	return stderr, stop
}

// slaveRel is slave.py relative to the module root.
var slaveRel = filepath.Join("hal", "modbus", "testdata", "slave.py")

// slavePath finds slave.py next to this package's source, or else under
// the module root above the working directory (a -trimpath build).
func slavePath() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		p := filepath.Join(filepath.Dir(file), "..", "testdata", "slave.py")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find slave.py: %w", err)
	}
	for {
		p := filepath.Join(dir, slaveRel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find slave.py: no %s above the working directory", slaveRel)
		}
		dir = parent
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
