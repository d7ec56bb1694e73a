//go:build !wasip1

package main

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// checkDecode holds the hand-written decoders to json.Unmarshal into the
// same types: both accept data or both refuse it, and accepted they agree.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	check := func(what string, got, want any, err, wantErr error) {
		t.Helper()
		if (err != nil) != (wantErr != nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %q: hand-written %+v, %v; encoding/json %+v, %v", what, data, got, err, want, wantErr)
		}
	}
	c, wantC := defaultConfig, defaultConfig
	check("config", c, wantC, c.decode(data), json.Unmarshal(data, &wantC))
	var r, wantR Reading
	err := r.decode(data)
	check("reading", r, wantR, err, json.Unmarshal(data, &wantR))
	var s, wantS Stats
	err = s.decode(data)
	check("stats", s, wantS, err, json.Unmarshal(data, &wantS))
}

// TestDecodeAgreesWithEncodingJSON: configs, readings and stored
// statistics, good and bad, decode as encoding/json decodes them.
func TestDecodeAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"valid_min_c":0,"valid_max_c":50}`, `{"VALID_MIN_C":-1e3}`, `{"valid_min_c":"0"}`, `{}`, `null`, `[]`,
		`{"device":"d1","temperature_c":21.5}`, `{"device":"d1","temperature_c":null}`, `{"device":"d1","temperature_c":"warm"}`,
		`{"count":3,"min_c":19,"max_c":21.5,"sum_c":61.5,"updated":"2025-01-02T03:04:05.123456789Z"}`,
		`{"count":3.5}`, `{"updated":"yesterday"}`, `{"updated":null}`, `{"updated":7}`, `{"updated":"2025-01-02T03:04:05+01:00"}`,
		`{"updated":"\u0032025-01-02T03:04:05Z"}`, `{"device":"d1"} {}`,
	} {
		checkDecode(t, []byte(in))
	}
}

// FuzzDecode: the decoders agree with encoding/json on any input.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

// TestEncodeAgreesWithEncodingJSON: statistics, replies and the device
// list are json.Marshal's bytes.
func TestEncodeAgreesWithEncodingJSON(t *testing.T) {
	c, f := 21.5, 70.7
	now := time.Date(2025, 1, 2, 3, 4, 5, 120000000, time.UTC)
	for _, v := range []interface{ append([]byte) []byte }{
		&Stats{Count: 3, MinC: 19, MaxC: 21.5, SumC: 61.5, Updated: now},
		&Stats{Count: 1 << 62, MinC: -1e-7, MaxC: 1e21},
		&Enriched{Device: `d1 "<&>"`, TemperatureC: &c, TemperatureF: &f, Count: 1, MinC: 21.5, MaxC: 21.5, MeanC: 21.5, Updated: now},
		&Enriched{Device: "d2", Updated: now.In(time.FixedZone("x", 3600))},
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.append(nil); string(got) != string(want) {
			t.Errorf("hand-written %s\njson.Marshal %s", got, want)
		}
	}
	want, _ := json.Marshal(map[string][]string{"devices": {"d1", "\xff"}})
	if got := appendDevices(nil, []string{"d1", "\xff"}); string(got) != string(want) {
		t.Errorf("devices %s, json.Marshal %s", got, want)
	}
}
