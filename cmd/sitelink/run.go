package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/edge"
)

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flags("run", stderr)
	path := fs.String("config", "/etc/sitelink/sitelink.yaml", "edge config `file`")
	level := fs.String("log-level", "info", "debug|info|warn|error")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	// The files the config names too, as `config check` does: a bad
	// one is refused here, with the check's words, not half-way through.
	cfg, err := config.LoadEdgeChecked(*path)
	if err != nil {
		return fmt.Errorf("config %s:\n%w", *path, err)
	}
	// SIGHUP (systemctl reload) reloads the file; caught before the
	// daemon starts, so that an early one cannot kill it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	n := newNotifier()
	d, err := edge.New(edge.Options{
		Config:     cfg,
		ConfigFile: *path,
		Version:    version,
		Logger:     log,
		// A missing NOTIFY_SOCKET makes these no-ops.
		Ready:            n.Ready,
		Status:           n.Status,
		Watchdog:         func() { _, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog) },
		WatchdogInterval: watchdogInterval(log),
	})
	if err != nil {
		return err
	}
	// The daemon runs on its own context, ended after STOPPING=1 is out:
	// the manager hears of the shutdown before it begins.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	go func() {
		select {
		case <-ctx.Done():
			n.Stopping()
			stopRun()
		case <-runCtx.Done():
		}
	}()
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the configuration", "file", *path)
				announced := n.Reloading()
				rctx, cancel := context.WithTimeout(runCtx, edge.DefaultConfigTrial+30*time.Second)
				err := d.Reload(rctx) // the daemon logs the outcome
				cancel()
				if announced && runCtx.Err() == nil {
					n.Reloaded(err)
				}
			case <-runCtx.Done():
				return
			}
		}
	}()
	return d.Run(runCtx)
}

// watchdogInterval is systemd's WatchdogSec= as passed in WATCHDOG_USEC
// (0 when the watchdog is off or meant for another process).
func watchdogInterval(log *slog.Logger) time.Duration {
	iv, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog disabled", "err", err)
		return 0
	}
	return iv
}
