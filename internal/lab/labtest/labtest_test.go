package labtest

import (
	"testing"
)

// recorder is a testing.TB that records how a test ended instead of ending.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Skip(...any)           { r.skipped = true }

// TestSkip: FLEET_REQUIRE_LAB=1 is the one switch that turns a skip into a
// failure.
func TestSkip(t *testing.T) {
	for _, tt := range []struct {
		require    string
		fail, skip bool
	}{
		{require: "", skip: true},
		{require: "0", skip: true},
		{require: "1", fail: true},
	} {
		t.Setenv(EnvRequire, tt.require)
		r := &recorder{TB: t}
		Skip(r, "no lab here")
		if r.failed != tt.fail || r.skipped != tt.skip {
			t.Errorf("%s=%q: failed %v skipped %v, want %v %v", EnvRequire, tt.require, r.failed, r.skipped, tt.fail, tt.skip)
		}
	}
}
