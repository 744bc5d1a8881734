package edge

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sitelink/sitelink/daemon/config"
	"github.com/sitelink/sitelink/hal"
	"github.com/sitelink/sitelink/hal/gpio"
)

var gpioInit = sync.OnceValue(gpio.Init)

// openGPIO builds a gpio station; its buttons reach the engine through
// exec, like the local API.
func (d *Daemon) openGPIO(sc config.Station) (hal.Station, error) {
	if err := gpioInit(); err != nil {
		return nil, fmt.Errorf("gpio: %w", err)
	}
	g := sc.GPIO
	pin := func(p *config.GPIOPin) *gpio.Pin {
		if p == nil {
			return nil
		}
		return &gpio.Pin{Name: p.Pin, ActiveLow: p.ActiveLow, Debounce: p.Debounce.D(), Pull: gpio.Pull(p.Pull)}
	}
	number := sc.Number
	button := func(what string, f func(e *engine) error) func() {
		return func() {
			if d.eng == nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var err error
			if xerr := d.eng.exec(ctx, func() { err = f(d.eng) }); xerr != nil {
				err = xerr
			}
			if err != nil {
				d.log.Warn("station button", "station", number, "button", what, "err", err)
			}
		}
	}
	return gpio.Open(gpio.Config{
		Number:            number,
		Contactor:         *pin(&g.Contactor),
		ContactorFeedback: pin(g.ContactorFeedback),
		Vehicle:           pin(g.Vehicle),
		Charging:          pin(g.Charging),
		Fault:             pin(g.Fault),
		StartButton:       pin(g.StartButton),
		StopButton:        pin(g.StopButton),
		FeedbackTimeout:   g.FeedbackTimeout.D(),
		Logger:            d.log.With("station", number),
		OnStart: button("start", func(e *engine) error {
			_, err := e.startSession(number, 0, time.Now())
			return err
		}),
		OnStop: button("stop", func(e *engine) error { return e.stopStation(number, time.Now()) }),
	})
}
