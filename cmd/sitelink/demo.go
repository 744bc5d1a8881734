package main

import (
	"context"
	"errors"
	"io"

	"github.com/sitelink/sitelink/daemon/demo"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flags("demo", stderr)
	keep := fs.Bool("keep", false, "keep the site running after the script, for the CLI (Ctrl-C stops)")
	verbose := fs.Bool("v", false, "also print the daemon's logs")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	o := demo.Options{Out: stdout, Keep: *keep, Version: version}
	if *verbose {
		o.Logger, _ = newLogger(stderr, "debug")
	}
	err := demo.Run(ctx, o)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
