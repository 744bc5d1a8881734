package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/nayaxsim"
)

const nayaxsimUsage = `usage:
  sitelink nayaxsim serve [-listen 127.0.0.1:8090] [-relay URL] [-integrator-id ID] [-callback-header Name=Value]
                          [-sign-key-file F] [-token-id N] [-token-secret-file F]
  sitelink nayaxsim tap -station N [-sim URL] [-machine-id ID] [-hw-serial S] [-card NAME] [-amount X]
                        [-device-start] [-stop-notify] [-availability-check]
  sitelink nayaxsim stop-tap -station N -card NAME [-sim URL] [-machine-id ID] [-hw-serial S] [-stop-notify]
  sitelink nayaxsim cortina-cancel -nayax-id ID [-void] [-sim URL]
  sitelink nayaxsim txns|requests [-call NAME] [-sim URL]
`

// cmdNayaxsim runs the Nayax simulator or drives a running one.
func cmdNayaxsim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, nayaxsimUsage)
		return exitCode(2)
	}
	sub, args := args[0], args[1:]
	fs := flags("nayaxsim "+sub, stderr)
	simURL := fs.String("sim", "http://127.0.0.1:8090", "a running simulator's `URL`")
	switch sub {
	case "serve":
		listen := fs.String("listen", "127.0.0.1:8090", "listen `address`")
		relayURL := fs.String("relay", "", "the relay's base `URL` for callbacks")
		integrator := fs.String("integrator-id", nayaxsim.DefaultIntegratorID, "expected IntegratorId")
		signKeyFile := fs.String("sign-key-file", "", "sign key `file` (default: the simulator's built-in key)")
		tokenID := fs.Int("token-id", nayaxsim.DefaultTokenID, "expected TokenId")
		secretFile := fs.String("token-secret-file", "", "token secret `file` (default: built-in)")
		level := fs.String("log-level", "info", "debug|info|warn|error")
		headers := map[string]string{}
		fs.Func("callback-header", "`Name=Value` sent with every callback, as Nayax sends the headers set up in its back office (repeatable)", func(v string) error {
			name, value, ok := strings.Cut(v, "=")
			if !ok || name == "" {
				return errors.New("want Name=Value")
			}
			headers[name] = value
			return nil
		})
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		log, err := newLogger(stderr, *level)
		if err != nil {
			return err
		}
		o := nayaxsim.Options{Addr: *listen, RelayURL: *relayURL, IntegratorID: *integrator, TokenID: int32(*tokenID), Logger: log,
			SignKey: nayaxsim.DefaultSignKey, TokenSecret: []byte(nayaxsim.DefaultTokenSecret), CallbackHeaders: headers}
		if *signKeyFile != "" {
			if o.SignKey, err = config.ReadSecret(*signKeyFile); err != nil {
				return err
			}
		}
		if *secretFile != "" {
			s, err := config.ReadSecret(*secretFile)
			if err != nil {
				return err
			}
			if o.TokenSecret, err = nayax.CipherKey(s); err != nil {
				return fmt.Errorf("-token-secret-file: %w", err)
			}
		}
		sim, err := nayaxsim.Start(o)
		if err != nil {
			return err
		}
		defer sim.Close()
		fmt.Fprintf(stdout, "nayaxsim: Spark API at %s, control API at %s/_sim\n", sim.URL(), sim.BaseURL())
		<-ctx.Done()
		return nil
	case "tap":
		station := fs.String("station", "", "station `number`")
		machine := fs.Int64("machine-id", 71234996, "terminal machine `id`")
		serial := fs.String("hw-serial", "0434334921100366", "terminal HW `serial`")
		card := fs.String("card", "alice", "card `name` (same name, same card hash)")
		amount := fs.Float64("amount", 0, "authorized `amount` (default: the trigger's, the InfoQuery answer's, or 15); with -availability-check also the estimate")
		deviceStart := fs.Bool("device-start", false, "the terminal uses Device Start: StartSession, InfoQuery, TransactionNotify (remembered for the terminal)")
		stopNotify := fs.Bool("stop-notify", false, "a stop at the terminal is a StopNotify, not a StopCallback (remembered for the terminal)")
		availCheck := fs.Bool("availability-check", false, "Device Start asks AvailabilityCheck with the estimated amount instead of InfoQuery (remembered for the terminal)")
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		if *station == "" {
			fmt.Fprint(stderr, nayaxsimUsage)
			return exitCode(2)
		}
		res, err := nayaxsim.Client(*simURL).Tap(ctx, nayaxsim.TapRequest{MachineID: *machine, HwSerial: *serial, Station: *station, Card: *card, Amount: *amount,
			DeviceStart: *deviceStart, StopNotify: *stopNotify, AvailabilityCheck: *availCheck})
		if err != nil {
			return err
		}
		return printJSON(stdout, res)
	case "stop-tap":
		station := fs.String("station", "", "station `number`")
		machine := fs.Int64("machine-id", 71234996, "terminal machine `id`")
		serial := fs.String("hw-serial", "0434334921100366", "terminal HW `serial`")
		card := fs.String("card", "", "card `name` (same name, same card hash)")
		stopNotify := fs.Bool("stop-notify", false, "send StopNotify, not StopCallback (remembered for the terminal)")
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		if *station == "" || *card == "" || fs.NArg() > 0 {
			fmt.Fprint(stderr, nayaxsimUsage)
			return exitCode(2)
		}
		res, err := nayaxsim.Client(*simURL).StopTap(ctx, nayaxsim.StopTapRequest{MachineID: *machine, HwSerial: *serial, Station: *station, Card: *card, StopNotify: *stopNotify})
		if err != nil {
			return err
		}
		return printJSON(stdout, res)
	case "cortina-cancel":
		id := fs.String("nayax-id", "", "NayaxTransactionId")
		void := fs.Bool("void", false, "send Void instead of Cancel")
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		n, err := strconv.ParseInt(*id, 10, 64)
		if err != nil {
			return fmt.Errorf("-nayax-id %q: %w", *id, err)
		}
		res, err := nayaxsim.Client(*simURL).CortinaCancel(ctx, n, *void, "")
		if err != nil {
			return err
		}
		return printJSON(stdout, res)
	case "txns", "requests":
		call := fs.String("call", "", "only this call")
		if err := fs.Parse(args); err != nil {
			return exitCode(2)
		}
		c := nayaxsim.Client(*simURL)
		var v any
		var err error
		if sub == "txns" {
			v, err = c.Txns(ctx)
		} else {
			v, err = c.Requests(ctx, *call)
		}
		if err != nil {
			return err
		}
		return printJSON(stdout, v)
	default:
		fmt.Fprint(stderr, nayaxsimUsage)
		return exitCode(2)
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
