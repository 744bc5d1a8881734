package gpio_test

import (
	"context"
	"fmt"

	pgpio "periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/gpio/gpiotest"

	"github.com/sitelink/sitelink/hal/gpio"
)

// A station with an active-low relay board on its contactor line and a
// vehicle-present input. On hardware, gpio.Init registers the real lines
// instead of the gpiotest pins.
func Example() {
	relay := &gpiotest.Pin{N: "EXAMPLE_RELAY"}
	vehicle := &gpiotest.Pin{N: "EXAMPLE_VEHICLE", EdgesChan: make(chan pgpio.Level)}
	for _, p := range []*gpiotest.Pin{relay, vehicle} {
		if err := gpioreg.Register(p); err != nil {
			panic(err)
		}
		defer gpioreg.Unregister(p.N)
	}

	st, err := gpio.Open(gpio.Config{
		Number:    "5",
		Contactor: gpio.Pin{Name: "EXAMPLE_RELAY", ActiveLow: true},
		Vehicle:   &gpio.Pin{Name: "EXAMPLE_VEHICLE"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	fmt.Println("after Open, relay line:", relay.Read())

	if err := st.SetContactor(context.Background(), true); err != nil {
		fmt.Println(err)
		return
	}
	r := st.Read()
	fmt.Println("closed, relay line:", relay.Read(), "contactor:", r.Contactor, "CP:", r.CP)

	if err := st.Halt(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("halted, relay line:", relay.Read())

	_, err = gpio.Open(gpio.Config{Number: "6", Contactor: gpio.Pin{Name: "GPIO99"}})
	fmt.Println(err)
	// Output:
	// after Open, relay line: High
	// closed, relay line: Low contactor: true CP: A
	// halted, relay line: High
	// open gpio station 6: contactor line "GPIO99": no such gpio line
}
