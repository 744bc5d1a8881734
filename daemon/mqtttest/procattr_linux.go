package mqtttest

import "syscall"

// procAttr makes the kernel stop mosquitto when the test binary dies
// (a panic, a -timeout, a kill), so no broker outlives its test.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
