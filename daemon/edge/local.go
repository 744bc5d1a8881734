package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sitelink/sitelink/daemon/billing"
	"github.com/sitelink/sitelink/daemon/nayax"
	"github.com/sitelink/sitelink/daemon/wire"
	"github.com/sitelink/sitelink/store"
)

// Sessions started and stopped from the site itself or an app backend:
// Remote Start (the local API, a station's start button, the MQTT start
// command), a local stop (stop button, `sitelink stop`) and the contactor
// self-test a technician runs when commissioning. All run on the engine.

// startSession opens a Remote Start: a requested session and its
// start-request event, committed together. amount is the decimal to
// authorize, in the currency's main unit ("15", "12.50"); "" or 0 means
// policy.start_amount. An amount with more decimals than the currency has
// is refused, never rounded. It runs on the engine.
func (e *engine) startSession(station string, amount string, now time.Time) (store.Session, error) {
	hw, ok := e.stations.get(station)
	if !ok {
		return store.Session{}, fmt.Errorf("unknown station %q", station)
	}
	term, found := e.conf().TerminalOf(station)
	if !found {
		return store.Session{}, fmt.Errorf("station %s has no payment terminal", station)
	}
	if r := hw.Read(); r.Fault != "" {
		return store.Session{}, fmt.Errorf("station %s is faulted: %s", station, r.Fault)
	} else if r.Contactor {
		return store.Session{}, fmt.Errorf("station %s: contactor closed without a session (welded?)", station)
	}
	tariff, err := e.conf().Tariff.Exact()
	if err != nil {
		return store.Session{}, err
	}
	var minor int64
	if amount != "" {
		if minor, err = billing.ParseAmount(amount, tariff.DecimalPlace); err != nil {
			return store.Session{}, fmt.Errorf("amount: %w (%s has %d decimals)", err, tariff.Currency, tariff.DecimalPlace)
		}
	}
	if minor == 0 {
		// Validate checked that start_amount is exact.
		if minor, err = billing.ParseAmount(store.FloatDecimal(e.conf().Policy.StartAmount), tariff.DecimalPlace); err != nil {
			return store.Session{}, fmt.Errorf("policy.start_amount: %w", err)
		}
	}
	s := store.Session{SparkTransactionID: newSparkID(), Station: station, Origin: store.OriginRemote, CreatedAt: now.UTC(),
		MachineID: term.MachineID, HwSerial: term.HwSerial, AuthorizedMinor: minor, Tariff: &tariff}
	call, body, err := billing.TriggerRequest(s.SparkTransactionID, term, minor, tariff.DecimalPlace, time.Duration(e.conf().Policy.TriggerTimeout))
	if err != nil {
		return store.Session{}, err
	}
	s.Request = &store.Request{Kind: billing.KindStart, Call: call, Body: body, FirstAt: now.UTC()}
	err = e.commit(func(tx *store.Tx) error {
		if cur, err := tx.ActiveSession(station); err == nil {
			return fmt.Errorf("station %s is busy with session %s", station, cur.SparkTransactionID)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := e.transition(tx, &s, store.Requested, "remote start", now); err != nil {
			return err
		}
		return e.sendRequest(tx, &s, now)
	})
	return s, err
}

// startCommand: an app backend asks for a Remote Start.
func (e *engine) startCommand(cmd wire.Command, now time.Time) (wire.Answer, func(tx *store.Tx) error) {
	var req struct {
		ServiceStationNumber nayax.Text
		Amount               nayax.Amount
	}
	if err := json.Unmarshal(cmd.Body, &req); err != nil {
		return declined(cmd, nayax.CodeValidation, "start: "+err.Error()), nil
	}
	if req.ServiceStationNumber.S == "" {
		return declined(cmd, nayax.CodeMissingMandatory, "ServiceStationNumber: required"), nil
	}
	s, err := e.startSession(req.ServiceStationNumber.S, req.Amount.Decimal(), now)
	if err != nil {
		return declined(cmd, nayax.CodeValidation, err.Error()), nil
	}
	a := approved()
	a.SparkTransactionId, a.ServiceStationNumber = s.SparkTransactionID, s.Station
	return a, nil
}

// stopStation ends the active session of a station from the site (a stop
// button, `sitelink` on the controller): the same stop as a card's. It
// runs on the engine.
func (e *engine) stopStation(station string, now time.Time) error {
	if _, ok := e.stations.get(station); !ok {
		return fmt.Errorf("unknown station %q", station)
	}
	s, err := e.find(func(tx *store.Tx) (store.Session, error) { return tx.ActiveSession(station) })
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("station %s has no active session", station)
	}
	if err != nil {
		return err
	}
	if s.State == store.Requested {
		return e.commit(func(tx *store.Tx) error {
			s.Request = nil
			return e.transition(tx, &s, store.Closed, billing.StopLocal, now)
		})
	}
	_, err = e.stop(&s, billing.StopLocal, now)
	return err
}

// selfTest switches a station's contactor on and off and checks the
// driver confirms both, for a technician commissioning a site. It refuses
// while the station has a session. It runs on the engine.
func (e *engine) selfTest(station string) (string, error) {
	hw, ok := e.stations.get(station)
	if !ok {
		return "", fmt.Errorf("unknown station %q", station)
	}
	_, err := e.find(func(tx *store.Tx) (store.Session, error) { return tx.ActiveSession(station) })
	busy := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if busy {
		return "", fmt.Errorf("station %s has a session; self-test refused", station)
	}
	var report strings.Builder
	for _, on := range []bool{true, false} {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), e.contactorTimeout())
		err := hw.SetContactor(ctx, on)
		cancel()
		if err != nil {
			_ = hw.Halt()
			return report.String(), fmt.Errorf("contactor %s: %w", onOff(on), err)
		}
		fmt.Fprintf(&report, "contactor %s: confirmed in %s\n", onOff(on), time.Since(start).Round(time.Millisecond))
	}
	r := hw.Read()
	fmt.Fprintf(&report, "CP state %s, meter %.1f Wh, power %.0f W, fault %q\n", r.CP, r.EnergyWh, r.PowerW, r.Fault)
	return report.String(), nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
