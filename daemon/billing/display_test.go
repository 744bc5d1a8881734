package billing

import (
	"testing"

	"github.com/sitelink/sitelink/store"
)

func TestPosDisplay(t *testing.T) {
	eur := func(price, fee int64) store.Tariff {
		return store.Tariff{Currency: "EUR", DecimalPlace: 2, PricePerKWhMicro: price, SessionFeeMicro: fee}
	}
	for _, tc := range []struct {
		name, format, station string
		tariff                store.Tariff
		want                  string
	}{
		{"default", "", "5", eur(390000, 0), ";Charging Station:5;Price:0.39 EUR/kWh;"},
		{"default with a fee", "", "5", eur(390000, 1500000), ";Charging Station:5;Price:0.39 EUR/kWh;Session fee:1.50 EUR;"},
		{"more decimals than the currency: shown, not rounded", "", "12", eur(395500, 0), ";Charging Station:12;Price:0.3955 EUR/kWh;"},
		{"whole price", "", "1", eur(2000000, 0), ";Charging Station:1;Price:2.00 EUR/kWh;"},
		{"no decimals currency", "", "1", store.Tariff{Currency: "JPY", DecimalPlace: 0, PricePerKWhMicro: 55000000}, ";Charging Station:1;Price:55 JPY/kWh;"},
		{"operator's format", "Point {station};{price} {currency} per kWh + {fee}", "7", eur(450000, 990000), "Point 7;0.45 EUR per kWh + 0.99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PosDisplay(tc.format, tc.station, tc.tariff); got != tc.want {
				t.Fatalf("PosDisplay = %q, want %q", got, tc.want)
			}
		})
	}
}
