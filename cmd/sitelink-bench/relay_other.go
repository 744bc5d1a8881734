//go:build !linux

package main

import (
	"os/exec"
	"time"
)

// relayDieWithParent: only Linux can tie a child's life to its parent's;
// elsewhere the group stops its children itself.
func relayDieWithParent(*exec.Cmd) {}

// relayProcessCPU is not known outside Linux.
func relayProcessCPU(int) (time.Duration, bool) { return 0, false }

// relayProcessRSS is not known outside Linux.
func relayProcessRSS(int) (int64, bool) { return 0, false }
