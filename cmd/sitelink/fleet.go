package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/wire"
)

// cmdFleet lists the fleet's nodes from their retained state messages;
// it runs anywhere with access to the broker.
func cmdFleet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "terminals" {
		return cmdFleetTerminals(ctx, args[1:], stdout, stderr)
	}
	fs := flags("fleet", stderr)
	broker := fs.String("broker", "tcp://127.0.0.1:1883", "broker `URL`")
	prefix := fs.String("prefix", wire.DefaultPrefix, "topic `prefix`")
	cfgPath := fs.String("config", "", "take broker, credentials and prefix from this edge or relay config `file`")
	wait := fs.Duration("wait", 2*time.Second, "how long to collect retained states")
	asJSON := fs.Bool("json", false, "print JSON")
	tlsFiles := tlsFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	c, pfx, err := fleetConnect(*broker, *prefix, *cfgPath, *tlsFiles)
	if err != nil {
		return err
	}
	*prefix = pfx
	var mu sync.Mutex
	nodes := map[string]wire.State{}
	defer c.Disconnect(100)
	t := c.Subscribe(wire.AllNodes(*prefix).State(), 1, func(_ paho.Client, m paho.Message) {
		node, kind, _, ok := wire.ParseNodeTopic(*prefix, m.Topic())
		if !ok || kind != wire.KindState || len(m.Payload()) == 0 {
			return
		}
		st, err := wire.DecodeState(m.Payload())
		if err != nil {
			return
		}
		mu.Lock()
		nodes[node] = st
		mu.Unlock()
	})
	if !t.WaitTimeout(10*time.Second) || t.Error() != nil {
		return fmt.Errorf("subscribe: %v", t.Error())
	}
	select {
	case <-time.After(*wait):
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if *asJSON {
		type row struct {
			Node string `json:"node"`
			wire.State
		}
		out := make([]row, 0, len(ids))
		for _, id := range ids {
			out = append(out, row{id, nodes[id]})
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	// CONFIG is the last applied desired config version, then the
	// group's and the node's versions that run (g/n).
	fmt.Fprintln(tw, "NODE\tONLINE\tEPOCH\tVERSION\tCONFIG\tG/N\tOUTBOX\tSTATIONS\tSINCE")
	for _, id := range ids {
		s := nodes[id]
		online := map[bool]string{true: "yes", false: "no"}[s.Online]
		if s.NodeIDConflict {
			online += " (node.id conflict)" // two daemons under this id: README
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d/%d\t%d\t%s\t%s\n", id, online, s.Epoch, s.Version,
			s.ConfigVersion, s.GroupConfigVersion, s.NodeConfigVersion, s.OutboxDepth,
			strings.Join(s.Stations, ","), s.At.Local().Format(time.DateTime))
	}
	return nil
}

// fleetConnect connects a short-lived client for the fleet commands: to
// broker with the TLS files given (the fleet operator's certificate), or
// to the broker, credentials and prefix of the edge or relay config at
// cfgPath when given. It returns the topic prefix to use.
func fleetConnect(broker, prefix, cfgPath string, files config.TLS) (paho.Client, string, error) {
	lo, err := config.MQTT{Broker: broker, TLS: files}.LinkOptions()
	if err != nil {
		return nil, "", err
	}
	if cfgPath != "" {
		kind, err := config.CheckFile(cfgPath)
		if err != nil {
			return nil, "", fmt.Errorf("config %s:\n%w", cfgPath, err)
		}
		var m config.MQTT
		if kind == config.KindRelay {
			c, _ := config.LoadRelay(cfgPath)
			m = c.MQTT
		} else {
			c, _ := config.LoadEdge(cfgPath)
			m = c.MQTT
			if m.Username != "" || m.TLS.CertFile != "" {
				return nil, "", fmt.Errorf("%s is a site controller's config with the node's own broker identity: "+
					"the broker would give this connection the node's client id, disconnect the daemon and discard its "+
					"persistent session (stops queued for it with it); use -config RELAY.yaml, or -broker with a fleet "+
					"operator's -cert-file/-key-file", cfgPath)
			}
		}
		if lo, err = m.LinkOptions(); err != nil {
			return nil, "", err
		}
		prefix = m.TopicPrefix
	}
	o := paho.NewClientOptions().AddBroker(lo.Broker).SetClientID(fmt.Sprintf("sitelink-fleet-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
	if lo.Username != "" {
		o.SetUsername(lo.Username).SetPassword(lo.Password)
	}
	if lo.TLS != nil {
		o.SetTLSConfig(lo.TLS)
	}
	c := paho.NewClient(o)
	if t := c.Connect(); !t.WaitTimeout(15*time.Second) || t.Error() != nil {
		return nil, "", fmt.Errorf("connect %s: %v", lo.Broker, t.Error())
	}
	return c, prefix, nil
}

// tlsFlags adds -ca-file, -cert-file and -key-file (the fleet operator's
// certificate, for an ssl:// -broker) to fs; the files are read after
// Parse.
func tlsFlags(fs *flag.FlagSet) *config.TLS {
	var t config.TLS
	fs.StringVar(&t.CAFile, "ca-file", "", "CA `file` the broker's certificate is checked against (empty: system roots)")
	fs.StringVar(&t.CertFile, "cert-file", "", "client certificate `file` (the fleet operator's, from the cloud CA)")
	fs.StringVar(&t.KeyFile, "key-file", "", "client key `file`")
	return &t
}
