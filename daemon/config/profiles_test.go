package config

import (
	"slices"
	"testing"

	"github.com/sitelink/sitelink/hal/modbus"
)

// The configuration accepts exactly the profiles the Modbus driver knows:
// a name the check accepts and the driver lacks would fault a station at
// start; one the driver has and the check refuses could never be used.
func TestProfilesAgreeWithDriver(t *testing.T) {
	for _, c := range []struct {
		name           string
		config, driver []string
	}{
		{"meter", profiles, modbus.Profiles()},
		{"controller", controllerProfiles, modbus.ControllerProfiles()},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, want := slices.Sorted(slices.Values(c.config)), slices.Sorted(slices.Values(c.driver))
			if !slices.Equal(got, want) {
				t.Fatalf("config accepts %v, driver knows %v", got, want)
			}
		})
	}
}
