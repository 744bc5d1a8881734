package main

import (
	"context"
	"fmt"
	"io"

	"github.com/sitelink/sitelink/daemon/localapi"
)

const hwUsage = `usage:
  sitelink hw selftest -station N     contactor on/off with feedback check, through the running daemon
                                      (refused while the station has a session)
`

// cmdHW holds the technician's commissioning tools.
func cmdHW(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, hwUsage)
		return exitCode(2)
	}
	sub, args := args[0], args[1:]
	fs := flags("hw "+sub, stderr)
	switch sub {
	case "selftest":
		station := fs.String("station", "", "station `number`")
		socket := socketFlags(fs)
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		if *station == "" {
			fmt.Fprint(stderr, hwUsage)
			return exitCode(2)
		}
		path, err := socket()
		if err != nil {
			return err
		}
		rep, err := localapi.NewClient(path).SelfTest(*station)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, rep)
		return nil
	}
	fmt.Fprint(stderr, hwUsage)
	return exitCode(2)
}
