package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/time/rate"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/relay"
)

func cmdRelay(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flags("relay", stderr)
	path := fs.String("config", "/etc/sitelink/relay.yaml", "relay config `file`")
	level := fs.String("log-level", "info", "debug|info|warn|error")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg, err := config.LoadRelayChecked(*path) // and the files it names, as `config check`
	if err != nil {
		return fmt.Errorf("config %s:\n%w", *path, err)
	}
	o, err := relayOptions(cfg, log)
	if err != nil {
		return err
	}
	r, err := relay.New(o)
	if err != nil {
		return err
	}
	wd := watchdogInterval(log)
	// STOPPING=1 goes out before the relay starts draining.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	go func() {
		select {
		case <-ctx.Done():
			_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
			stopRun()
		case <-runCtx.Done():
		}
	}()
	go func() {
		select {
		case <-r.Ready():
		case <-ctx.Done():
			return
		}
		_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
		if wd <= 0 {
			return
		}
		// The relay is stateless and its HTTP server runs on its own
		// goroutines: a plain ticker is enough to catch a wedged process.
		t := time.NewTicker(wd / 2)
		defer t.Stop()
		for {
			_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return r.Run(runCtx)
}

// relayOptions turns a relay config into options, reading the secrets
// from their files.
func relayOptions(cfg *config.Relay, log *slog.Logger) (relay.Options, error) {
	var o relay.Options
	sec, err := cfg.Secrets()
	if err != nil {
		return o, err
	}
	client, err := nayax.NewClient(nayax.ClientConfig{
		BaseURL:      cfg.Nayax.BaseURL,
		IntegratorID: cfg.Nayax.IntegratorID,
		SignKey:      sec.SignKey,
		TokenID:      cfg.Nayax.TokenID,
		TokenSecret:  sec.TokenSecret,
		Timeout:      cfg.Nayax.Timeout.D(),
		Attempts:     cfg.Nayax.Attempts,
		Logger:       log.With("part", "nayax"),
	})
	if err != nil {
		return o, fmt.Errorf("nayax: %w", err)
	}
	lo, err := cfg.MQTT.LinkOptions()
	if err != nil {
		return o, err
	}
	o = relay.Options{
		ID:             cfg.Relay.ID,
		Prefix:         cfg.MQTT.TopicPrefix,
		Group:          cfg.Relay.ShareGroup,
		Listen:         cfg.Relay.Listen,
		AckBudget:      cfg.Relay.AckBudget.D(),
		TriggerTimeout: cfg.Nayax.TriggerTimeout.D(),
		Link:           lo,
		Nayax:          client,
		Logger:         log,
		MetricsListen:  cfg.Relay.MetricsListen,
		RateLimit:      rate.Limit(cfg.Relay.RateLimit),
		RateBurst:      cfg.Relay.RateBurst,
		MaxConnections: cfg.Relay.MaxConnections,
		CardKey:        sec.CardKey,
		MaxStartAmount: cfg.Relay.MaxStartAmount,
		TokenID:        cfg.Nayax.TokenID,
		TokenSecret:    sec.TokenSecret,

		InsecureAllowUnauthenticatedCallbacks: cfg.Relay.InsecureAllowUnauthenticatedCallbacks,
	}
	if cfg.Relay.RateLimit == 0 {
		o.RateLimit = rate.Inf // the config's "no limit"; zero in Options is the default
	}
	for i, h := range cfg.Relay.CallbackHeaders {
		o.CallbackHeaders = append(o.CallbackHeaders, relay.Header{Name: h.Name, Value: sec.Headers[i]})
	}
	if sec.TLS != nil {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: sec.TLS}
	}
	return o, nil
}
