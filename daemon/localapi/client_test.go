package localapi

import (
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A socket the caller may not open names the group to join; a missing
// socket or a dead daemon says so. (Tests run as root here, which no
// permission stops: the dial errors are made up, as the kernel gives them.)
func TestDialError(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	group := strconv.Itoa(os.Getgid())
	if err == nil {
		group = g.Name
	}
	dial := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
	}
	cases := []struct {
		name, socket string
		err          error
		want         []string
	}{
		{"permission on the socket's dir", sock, dial(syscall.EACCES),
			[]string{"permission denied", "group " + group, "usermod -aG " + group}},
		{"permission, nothing to look at", "/nonexistent/dir/api.sock", dial(syscall.EACCES),
			[]string{"group " + ServiceGroup}},
		{"no socket", sock, dial(syscall.ENOENT), []string{"no such socket", "is the daemon running"}},
		{"stale socket", sock, dial(syscall.ECONNREFUSED), []string{"the daemon is not running"}},
		{"other", sock, fmt.Errorf("boom"), []string{"boom"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := dialError(c.socket, c.err).Error()
			for _, w := range append(c.want, c.socket) {
				if !strings.Contains(msg, w) {
					t.Errorf("%q lacks %q", msg, w)
				}
			}
		})
	}
	// A real dial to a missing socket goes through the same words.
	if _, err := NewClient(sock).Status(); err == nil || !strings.Contains(err.Error(), "no such socket") {
		t.Errorf("status on a missing socket: %v", err)
	}
}
