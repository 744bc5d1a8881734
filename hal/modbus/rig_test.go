package modbus

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The integration rig: a real pty pair from socat, and on its far end a
// Modbus RTU slave that is not our code (Debian's python3-pymodbus, run by
// Debian's python3, not whatever python3 is first on PATH).
const (
	socatPath  = "/usr/bin/socat"
	pythonPath = "/usr/bin/python3"
	rigWait    = 20 * time.Second // start-up and command answers, generous for loaded CI machines
)

var (
	pymodbusOnce sync.Once
	pymodbusErr  error
)

// requireRig skips the test when socat or pymodbus is missing, or fails
// it when SITELINK_REQUIRE_MODBUS=1 (CI installs both).
func requireRig(t *testing.T) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("SITELINK_REQUIRE_MODBUS") == "1" {
			t.Fatalf("%s (SITELINK_REQUIRE_MODBUS=1)", msg)
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

// startProcess starts cmd with its stderr collected, kills it in cleanup
// and logs its stderr if the test failed.
func startProcess(t *testing.T, cmd *exec.Cmd, name string) *syncBuffer {
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
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-waited:
		case <-time.After(rigWait):
			t.Errorf("%s (pid %d) did not exit after kill", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, stderr.String())
		}
	})
	return stderr
}

// startPTYPair runs socat with two linked ptys and returns their paths.
func startPTYPair(t *testing.T) (a, b string) {
	t.Helper()
	dir := t.TempDir()
	a, b = filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cmd := exec.Command(socatPath, "-d", "-d",
		"pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	log := startProcess(t, cmd, "socat")
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
	case <-time.After(rigWait):
		t.Fatalf("socat did not set up the pty pair within %v", rigWait)
	}
	return a, b
}

// slave is the pymodbus process serving testdata/slave.py.
type slave struct {
	t     *testing.T
	mu    sync.Mutex // one command at a time
	stdin io.WriteCloser
	lines chan string
}

// startSlave runs testdata/slave.py on port and waits until it serves.
func startSlave(t *testing.T, port string) *slave {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "slave.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pythonPath, script, port)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	startProcess(t, cmd, "pymodbus slave")
	s := &slave{t: t, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() { _ = stdin.Close() })
	if line := s.read(); line != "ready" {
		t.Fatalf("pymodbus slave said %q, want ready", line)
	}
	return s
}

func (s *slave) read() string {
	s.t.Helper()
	select {
	case line, ok := <-s.lines:
		if !ok {
			s.t.Fatal("pymodbus slave exited")
		}
		return line
	case <-time.After(rigWait):
		s.t.Fatalf("pymodbus slave did not answer within %v", rigWait)
	}
	return ""
}

// do sends one command (see testdata/slave.py) and returns what follows
// "ok".
func (s *slave) do(t *testing.T, format string, args ...any) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := fmt.Sprintf(format, args...)
	if _, err := fmt.Fprintln(s.stdin, cmd); err != nil {
		t.Fatalf("slave %q: %v", cmd, err)
	}
	line := s.read()
	if line != "ok" && !strings.HasPrefix(line, "ok ") {
		t.Fatalf("slave %q: %s", cmd, line)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "ok"))
}

// rig is a Bus on one end of a pty pair with pymodbus on the other.
type rig struct {
	bus   *Bus
	slave *slave
}

// rigTimeout is the bus timeout of the rig: pymodbus on a loaded machine
// can take hundreds of milliseconds to answer.
const rigTimeout = 2 * time.Second

func startRig(t *testing.T) *rig {
	t.Helper()
	requireRig(t)
	a, b := startPTYPair(t)
	s := startSlave(t, b)
	bus, err := OpenBus(BusConfig{Name: "rig", Port: a, Baud: 19200, Timeout: rigTimeout}, nil)
	if err != nil {
		t.Fatalf("OpenBus: %v", err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	return &rig{bus: bus, slave: s}
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
