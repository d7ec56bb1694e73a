package jsonlite_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/sdk/jsonlite"
)

// decodeValue reads data as one generic value.
func decodeValue(data []byte) (any, error) {
	d := jsonlite.NewDecoder(data)
	v := d.Value()
	return v, d.Finish()
}

// checkValue holds jsonlite to encoding/json on data: both accept it or
// both refuse it, accepted they agree on the value, and the value
// re-encodes to json.Marshal's bytes.
func checkValue(t *testing.T, data []byte) {
	t.Helper()
	var want any
	wantErr := json.Unmarshal(data, &want)
	got, err := decodeValue(data)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%q: jsonlite error %v, encoding/json error %v", data, err, wantErr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: jsonlite %#v, encoding/json %#v", data, got, want)
	}
	wantOut, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("marshal %#v: %v", want, err)
	}
	if out := jsonlite.AppendValue(nil, got); string(out) != string(wantOut) {
		t.Fatalf("%q: AppendValue %s, json.Marshal %s", data, out, wantOut)
	}
}

// TestValueAgreesWithEncodingJSON: values, escapes, numbers and syntax
// errors of every kind decode (or fail) as encoding/json decodes them.
func TestValueAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, ` [ ] `, `{}`, `"x"`, `-0`, `0.5e-7`, `1E+21`, `123456789012345678901234567890`,
		`1e400`, `-1e-400`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `tru`, `nul`, `falsey`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{1:2}`,
		`"\u00e9\ud83d\ude00\ud800\u0041\udc00x"`, `"\ud800"`, `"\ud800\u"`, `"\x"`, "\"a\tb\"", "\"\xff\xfe ok \xe2\x82\"",
		`"<&>\u2028\u2029\/\b\f\n\r\t\u0001"`, `{"a":1,"a":2}`, `{"A":1,"a":2}`, strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001), `1 2`, ``, ` `, "\x00", `{"a":[1,{"b":null}]}x`, `1e-7`, `1e21`, `1e20`,
		`123456789`, `0.000001`, `-0.0000001`, `"` + strings.Repeat("ab\\n", 100) + `"`,
	} {
		checkValue(t, []byte(in))
	}
}

// FuzzValue: jsonlite and encoding/json agree on any input.
func FuzzValue(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) { checkValue(t, data) })
}

// TestErrorNamesThePlace: an error says where in the document and what.
func TestErrorNamesThePlace(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"devices":[{"id":"a"},{"id":7}]}`, `json devices[1].id: want a string, got a number (byte 29)`},
		{`{"devices":[{"n":1.5}]}`, `json devices[0].n: number 1.5 is not an int64 (byte 17)`},
		{`{"devices":[{"id":"a",}]}`, `json devices[0]: invalid character '}' looking for the beginning of an object key string (byte 22)`},
		{`{"devices":[]} x`, `json: invalid character 'x' after the top-level value (byte 15)`},
		{`{"devices":`, `json devices: unexpected end of input (byte 11)`},
	} {
		d := jsonlite.NewDecoder([]byte(c.in))
		d.Object([]string{"devices"}, func(string) {
			d.Array(func(int) {
				d.Object([]string{"id", "n"}, func(name string) {
					if name == "id" {
						var s string
						d.String(&s)
						return
					}
					var n int64
					d.Int64(&n)
				})
			})
		})
		if err := d.Finish(); err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %s", c.in, err, c.want)
		}
	}
}

// TestFieldsMatchAsEncodingJSONMatches: exact names first, then case
// folded; unknown keys skipped; null leaves a value and clears a map.
func TestFieldsMatchAsEncodingJSONMatches(t *testing.T) {
	type doc struct {
		Name string         `json:"name"`
		N    int64          `json:"n"`
		F    float64        `json:"f"`
		B    bool           `json:"b"`
		M    map[string]any `json:"m"`
	}
	for _, in := range []string{
		`{"NAME":"x","name":"y","N":3,"other":[1,{"a":2}],"f":0.5,"B":true,"m":{"a":1}}`,
		`{"name":"x","name":null,"n":2,"n":null,"b":true,"b":null,"m":{"a":1},"m":{"b":2}}`,
		`{"m":{"a":1},"m":null}`, `{"ſ":1,"NAMe":"k"}`, `null`, `{"n":"1"}`, `{"b":1}`, `{"m":[]}`, `[]`,
	} {
		var want doc
		wantErr := json.Unmarshal([]byte(in), &want)
		var got doc
		d := jsonlite.NewDecoder([]byte(in))
		d.Object([]string{"name", "n", "f", "b", "m"}, func(name string) {
			switch name {
			case "name":
				d.String(&got.Name)
			case "n":
				d.Int64(&got.N)
			case "f":
				d.Float64(&got.F)
			case "b":
				d.Bool(&got.B)
			case "m":
				d.Map(&got.M)
			}
		})
		err := d.Finish()
		if (err != nil) != (wantErr != nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: jsonlite %+v, %v; encoding/json %+v, %v", in, got, err, want, wantErr)
		}
	}
}

// TestAppendFloat: json.Marshal's text for floats, exponents included.
func TestAppendFloat(t *testing.T) {
	for _, f := range []float64{0, -0.0, 1, -1.5, 21.5, 1e-6, 9.99e-7, 1e-9, 1e20, 1e21, 123456789.125, 5e-324, 1.7976931348623157e308} {
		want, _ := json.Marshal(f)
		if got := jsonlite.AppendFloat(nil, f); string(got) != string(want) {
			t.Errorf("AppendFloat(%v) = %s, json.Marshal %s", f, got, want)
		}
	}
}
