package mqtttest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The shipped broker configuration: configs/mosquitto.conf and the ACL
// files it names, in the repository of module shippedModule.
const (
	shippedModule = "github.com/sitelink/sitelink"
	shippedConf   = "configs/mosquitto.conf"
	// Shipped listener ports, and the ACL file each listener must use.
	shippedNodesPort = 8883
	shippedCloudPort = 8884
	shippedNodesACL  = "sitelink-nodes.acl"
	shippedCloudACL  = "sitelink-cloud.acl"
)

// Shipped is mosquitto running configs/mosquitto.conf and its ACL files
// as the repository ships them (see StartShipped).
type Shipped struct {
	// NodesURL is the node listener (shipped as port 8883), CloudURL the
	// cloud listener (8884): ssl://127.0.0.1:PORT, for paho.
	NodesURL, CloudURL   string
	NodesAddr, CloudAddr string // 127.0.0.1:PORT
	// NodeCA is the node listener's CA (its cafile; it also signed that
	// listener's server certificate), CloudCA the cloud listener's.
	// NodeCA.ClientConfig(t, "site-a") connects to NodesURL as node
	// site-a. Their ClientCert and ClientKey are empty.
	NodeCA, CloudCA TLSFiles
	// Config is configs/mosquitto.conf as mosquitto runs it, with the
	// machine-specific lines rewritten.
	Config string

	b *Broker
}

// StartShipped starts mosquitto with the broker configuration sitelink
// ships, configs/mosquitto.conf with configs/sitelink-nodes.acl and
// configs/sitelink-cloud.acl, read from the repository (found by walking
// up from the working directory to its go.mod), so that a test exercises
// the policy operators install, not a copy of it that could drift.
//
// It is installed as the file says, as a drop-in: mosquitto runs a main
// configuration like Debian's /etc/mosquitto/mosquitto.conf (pid_file,
// persistence, persistence_location, log_dest, include_dir), with this
// test's directory for its paths, and the shipped file in its conf.d.
// So an option the shipped file repeats from Debian's and mosquitto
// refuses twice fails the test as it would fail the install.
//
// In the shipped file only machine-specific lines are rewritten: each
// listener's port (to a free one on 127.0.0.1), cafile, certfile and
// keyfile (to test certificates: a node CA for the 8883 listener, a
// cloud CA for 8884, each signing its listener's server certificate) and
// acl_file (to the repository's file of that name); user is commented
// out (the main configuration has the test's). Every other line is kept
// verbatim. If a line that should be rewritten is missing or unexpected
// (a listener other than 8883 and 8884, a listener without its cafile,
// both listeners with the same cafile, the node listener not using
// sitelink-nodes.acl, a persistence_location that Debian's file already
// sets, ...), the test fails: the shipped file changed shape and this
// helper, or the file, must follow.
//
// Like StartWith, it skips the test without mosquitto, or fails it if
// RequireEnv=1. It reports failure with t.Fatal: call it from the test's
// goroutine.
func StartShipped(t testing.TB) *Shipped {
	t.Helper()
	bin := findMosquitto()
	if bin == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal("mosquitto required (" + RequireEnv + "=1) but not found in PATH, /usr/sbin or /usr/local/sbin")
		}
		t.Skip("mqtttest: mosquitto not found; the shipped configuration needs it")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(root, shippedConf))
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	s := &Shipped{
		NodeCA:  makeCA(t, "sitelink test node CA"),
		CloudCA: makeCA(t, "sitelink test cloud CA"),
	}
	b := newMosquitto(t, bin)
	s.b = b
	confd := filepath.Join(b.dir, "conf.d")
	if err := os.Mkdir(confd, 0o700); err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	m := shippedMachine{
		ca:     map[int]TLSFiles{shippedNodesPort: s.NodeCA, shippedCloudPort: s.CloudCA},
		aclDir: filepath.Join(root, "configs"),
	}
	b.run(2, func(ports []int) (string, error) {
		m.ports = map[int]int{shippedNodesPort: ports[0], shippedCloudPort: ports[1]}
		conf, err := renderShipped(string(src), m)
		if err != nil {
			return "", err
		}
		s.Config = conf
		if err := os.WriteFile(filepath.Join(confd, "sitelink.conf"), []byte(conf), 0o600); err != nil {
			return "", err
		}
		return debianMain(b.dir, b.logPath(), confd), nil
	})
	s.NodesAddr, s.CloudAddr = b.addrs[0], b.addrs[1]
	s.NodesURL, s.CloudURL = "ssl://"+s.NodesAddr, "ssl://"+s.CloudAddr
	return s
}

// Stop stops mosquitto (SIGTERM, persistence written); see Broker.Stop.
func (s *Shipped) Stop() { s.b.Stop() }

// Restart starts mosquitto again on the same ports with what it
// persisted; see Broker.Restart. Call it from the test's goroutine.
func (s *Shipped) Restart() {
	s.b.t.Helper()
	s.b.Restart()
}

// debianMain is Debian's /etc/mosquitto/mosquitto.conf (Debian 12's
// mosquitto 2.0.11-1.2) with dir for its paths, plus what every mqtttest
// broker logs and the user to stay.
func debianMain(dir, log, confd string) string {
	var c strings.Builder
	c.WriteString("# Debian's /etc/mosquitto/mosquitto.conf with the paths of one test (daemon/mqtttest).\n")
	fmt.Fprintf(&c, "pid_file %s\n", filepath.Join(dir, "mosquitto.pid"))
	c.WriteString("persistence true\n")
	fmt.Fprintf(&c, "persistence_location %s/\n", dir)
	fmt.Fprintf(&c, "log_dest file %s\n", log)
	c.WriteString("# Added by mqtttest: what it logs, and the user to stay.\n")
	c.WriteString("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	c.WriteString("log_timestamp_format %Y-%m-%dT%H:%M:%S\n")
	if u := currentUser(); u != "" {
		// Run as root, mosquitto drops to the user "mosquitto", which
		// cannot write to the test's directory.
		fmt.Fprintf(&c, "user %s\n", u)
	}
	fmt.Fprintf(&c, "include_dir %s\n", confd)
	return c.String()
}

// shippedMachine is what renderShipped puts into the shipped
// configuration in place of the production machine's paths and ports.
type shippedMachine struct {
	ports  map[int]int      // shipped listener port -> port to use
	ca     map[int]TLSFiles // shipped listener port -> its CA and server certificate
	aclDir string           // where the shipped ACL files are
}

// renderShipped rewrites the machine-specific lines of the shipped
// configuration conf for m, and checks that each was there: both
// listeners, each with one cafile, certfile, keyfile and the acl_file
// of its kind.
func renderShipped(conf string, m shippedMachine) (string, error) {
	var out strings.Builder
	var errs []error
	fail := func(n int, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", shippedConf, n, fmt.Sprintf(format, args...)))
	}
	// per listener (by shipped port): option -> times rewritten
	seen := map[int]map[string]int{}
	cafiles := map[int]string{} // per listener: the shipped cafile
	listener := 0               // shipped port of the listener being configured; 0: none yet, -1: an unexpected one
	sc := bufio.NewScanner(strings.NewReader(conf))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			out.WriteString(line + "\n")
			continue
		}
		switch f[0] {
		case "listener":
			port := 0
			if len(f) >= 2 {
				port, _ = strconv.Atoi(f[1])
			}
			if _, ok := m.ports[port]; !ok {
				fail(n, "listener %q: want listeners %d (nodes) and %d (cloud)", strings.Join(f[1:], " "), shippedNodesPort, shippedCloudPort)
				listener = -1
				continue
			}
			if seen[port] != nil {
				fail(n, "listener %d twice", port)
			}
			listener = port
			seen[port] = map[string]int{}
			fmt.Fprintf(&out, "listener %d 127.0.0.1\n", m.ports[port])
			continue
		case "cafile", "certfile", "keyfile", "acl_file":
			if listener == 0 {
				fail(n, "%s before any listener: with per_listener_settings it belongs to a listener", f[0])
				continue
			}
			if listener < 0 {
				continue
			}
			seen[listener][f[0]]++
			ca := m.ca[listener]
			switch f[0] {
			case "cafile":
				cafiles[listener] = strings.Join(f[1:], " ")
				fmt.Fprintf(&out, "cafile %s\n", ca.CAFile)
			case "certfile":
				fmt.Fprintf(&out, "certfile %s\n", ca.ServerCert)
			case "keyfile":
				fmt.Fprintf(&out, "keyfile %s\n", ca.ServerKey)
			case "acl_file":
				want := shippedNodesACL
				if listener == shippedCloudPort {
					want = shippedCloudACL
				}
				if len(f) != 2 || filepath.Base(f[1]) != want {
					fail(n, "listener %d: acl_file %q, want one named %s", listener, strings.Join(f[1:], " "), want)
					continue
				}
				fmt.Fprintf(&out, "acl_file %s\n", filepath.Join(m.aclDir, want))
			}
			continue
		case "persistence_location", "pid_file":
			// mosquitto 2.0.11 refuses a string option twice ("Duplicate
			// persistence_location value in configuration"), and
			// Debian's mosquitto.conf sets these.
			fail(n, "%s: Debian's mosquitto.conf sets it, and mosquitto refuses a second one", f[0])
			continue
		case "log_dest":
			if len(f) >= 2 && f[1] == "file" {
				fail(n, "log_dest file: Debian's mosquitto.conf sets it, and mosquitto refuses a second one")
				continue
			}
		case "user":
			out.WriteString("# (mqtttest: the main configuration has the test's) " + line + "\n")
			continue
		}
		out.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	for _, port := range []int{shippedNodesPort, shippedCloudPort} {
		if seen[port] == nil {
			errs = append(errs, fmt.Errorf("%s: no listener %d", shippedConf, port))
			continue
		}
		for _, opt := range []string{"cafile", "certfile", "keyfile", "acl_file"} {
			if c := seen[port][opt]; c != 1 {
				errs = append(errs, fmt.Errorf("%s: listener %d has %s %d times, want once", shippedConf, port, opt, c))
			}
		}
	}
	// The test gives each listener its own CA whatever the file says;
	// the file must say so too.
	if c := cafiles[shippedNodesPort]; c != "" && c == cafiles[shippedCloudPort] {
		errs = append(errs, fmt.Errorf("%s: both listeners trust cafile %s: a node certificate would be accepted where relays connect", shippedConf, c))
	}
	return out.String(), errors.Join(errs...)
}

// currentUser is the user mosquitto should stay: the test's.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// repoRoot walks up from the working directory (a package directory
// under go test) to the directory whose go.mod declares shippedModule.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modulePath(data) == shippedModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s above the working directory", shippedModule)
		}
		dir = parent
	}
}

// modulePath returns the module path a go.mod declares.
func modulePath(gomod []byte) string {
	for line := range bytes.Lines(gomod) {
		if rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("module")); ok {
			return strings.Trim(string(bytes.TrimSpace(rest)), `"`)
		}
	}
	return ""
}
