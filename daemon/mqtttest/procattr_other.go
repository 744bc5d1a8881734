//go:build !linux

package mqtttest

import "syscall"

// procAttr has no parent-death signal to offer outside Linux; a test
// binary that dies there may leave its mosquitto running.
func procAttr() *syscall.SysProcAttr { return nil }
