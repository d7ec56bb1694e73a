//go:build !wasip1

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The codec (json.go, encode.go, decode.go, scan.go) must behave exactly
// as encoding/json on
// the plugin's documents: these tests hold it to encoding/json on many
// inputs, odd ones above all, and FuzzCodec on any.

// decodeCase is one document type the plugin decodes, run by both codecs.
type decodeCase struct {
	name string
	// run decodes data into a fresh value with encoding/json and with the
	// codec and returns the two values and errors.
	run func(data []byte) (std, own any, stdErr, ownErr error)
	// encode encodes a value as run returned it with both codecs, for the
	// types the plugin also encodes.
	encode func(v any) (std, own []byte, err error)
}

// pair builds a decodeCase for *T, whose codec decoder is dec.
func pair[T any](name string, dec func(*T, []byte) error, enc func(*T, []byte) []byte) decodeCase {
	c := decodeCase{name: name, run: func(data []byte) (any, any, error, error) {
		std, own := new(T), new(T)
		stdErr := json.Unmarshal(data, std)
		ownErr := dec(own, data)
		return std, own, stdErr, ownErr
	}}
	if enc != nil {
		c.encode = func(v any) ([]byte, []byte, error) {
			std, err := json.Marshal(v)
			return std, enc(v.(*T), nil), err
		}
	}
	return c
}

var decodeCases = []decodeCase{
	pair("TwinUpdate", (*TwinUpdate).decodeJSON, (*TwinUpdate).appendJSON),
	pair("BaseMessage", (*BaseMessage).decodeJSON, nil),
	pair("StateUpdate", (*StateUpdate).decodeJSON, nil),
	pair("MembershipUpdate", (*MembershipUpdate).decodeJSON, (*MembershipUpdate).appendJSON),
	pair("MembershipDetail", (*MembershipDetail).decodeJSON, (*MembershipDetail).appendJSON),
	pair("record", (*record).decodeJSON, (*record).appendJSON),
	pair("Config", (*Config).decodeJSON, nil),
}

// compareDecode decodes data with both codecs as every document type and
// reports any difference: in whether it decodes, in what it decodes to,
// and, for what decodes, in how the result encodes. It also checks that
// the codec's errors say where.
func compareDecode(t *testing.T, data []byte) {
	t.Helper()
	for _, c := range decodeCases {
		std, own, stdErr, ownErr := c.run(data)
		if (stdErr == nil) != (ownErr == nil) {
			t.Errorf("%s %q:\n encoding/json error: %v\n codec error:         %v", c.name, data, stdErr, ownErr)
			continue
		}
		if ownErr != nil {
			var de *decodeError
			if !errors.As(ownErr, &de) || de.offset < 0 || de.offset > len(data) || !strings.HasPrefix(ownErr.Error(), "json: ") {
				t.Errorf("%s %q: error %q does not say where", c.name, data, ownErr)
			}
			continue
		}
		if !reflect.DeepEqual(std, own) {
			t.Errorf("%s %q:\n encoding/json: %s\n codec:         %s", c.name, data, dump(std), dump(own))
			continue
		}
		if c.encode != nil {
			compareEncode(t, c.name, own, c.encode)
		}
		compareDerived(t, own)
	}
}

// compareEncode checks that v encodes to the same bytes with both codecs.
func compareEncode(t *testing.T, name string, v any, encode func(any) ([]byte, []byte, error)) {
	t.Helper()
	std, own, err := encode(v)
	if err != nil {
		t.Fatalf("%s: encoding/json: %v", name, err)
	}
	if !bytes.Equal(std, own) {
		t.Errorf("%s encodes differently:\n encoding/json: %s\n codec:         %s", name, std, own)
	}
}

// compareDerived encodes the documents the plugin sends (but never
// decodes), built from the parts of a decoded one, with both codecs.
func compareDerived(t *testing.T, v any) {
	t.Helper()
	var base BaseMessage
	var twins map[string]*MsgTwin
	switch v := v.(type) {
	case *TwinUpdate:
		base, twins = v.BaseMessage, v.Twin
	case *record:
		base, twins = BaseMessage{EventID: v.ID, Timestamp: int64(len(v.Name))}, v.Twin
	default:
		return
	}
	docs := map[string]*TwinDoc{}
	delta := map[string]string{}
	for k, tw := range twins {
		docs[k] = &TwinDoc{Last: tw, Current: tw}
		if tw != nil && tw.Expected != nil && tw.Expected.Value != nil {
			delta[k] = *tw.Expected.Value
		}
		docs[k+"/"] = nil
		docs[k+"//"] = &TwinDoc{Current: tw}
	}
	derived := []interface{ appendJSON([]byte) []byte }{
		&TwinDocument{BaseMessage: base, Twin: docs},
		&TwinDocument{BaseMessage: base},
		&TwinDelta{BaseMessage: base, Twin: twins, Delta: delta},
		&TwinDelta{BaseMessage: base},
		&ErrorResult{BaseMessage: base, Code: int(base.Timestamp), Reason: base.EventID},
		&StateResult{BaseMessage: base, Device: DeviceState{Name: base.EventID, State: base.EventID + "x", LastOnline: base.EventID}},
		&StateResult{BaseMessage: base, Device: DeviceState{State: base.EventID + "x"}},
		&StateResult{BaseMessage: base},
	}
	for _, d := range derived {
		std, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("%T: encoding/json: %v", d, err)
		}
		if own := d.appendJSON(nil); !bytes.Equal(std, own) {
			t.Errorf("%T encodes differently:\n encoding/json: %s\n codec:         %s", d, std, own)
		}
	}
}

// dump shows a decoded value, pointers followed.
func dump(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// oddDocuments are inputs chosen to reach every rule of the codec: every
// kind of value where every field expects another, escapes, broken
// UTF-8, case-folded and repeated keys, numbers at and past int64's
// limits and in strings, nulls everywhere, and syntax errors of each
// kind.
var oddDocuments = []string{
	// Empty, whole-document and top-level cases.
	``, ` `, `null`, ` null `, `nul`, `nullx`, `{}`, `{ }`, `[]`, `"x"`, `5`, `-1`, `true`, `false`,
	`{`, `}`, `{}}`, `{} {}`, `{}x`, "\ufeff{}", "\v{}", "\f{}", "\u00a0{}", " \t\r\n{ \t\r\n} \t\r\n",
	`{"event_id":"e1","timestamp":0,"twin":{"temp":{"actual":{"value":"21"},"metadata":{"type":"string"}}}}`,
	// Twin updates: the shapes, nulls and empties.
	`{"twin":{}}`, `{"twin":null}`, `{"twin":{"a":null}}`, `{"twin":{"a":{}}}`, `{"twin":[]}`, `{"twin":"x"}`,
	`{"twin":{"a":{"expected":null,"actual":null,"optional":null,"metadata":null,"expected_version":null,"actual_version":null}}}`,
	`{"twin":{"a":{"expected":{},"actual":{"value":null,"metadata":null}}}}`,
	`{"twin":{"a":{"expected":{"value":"1","metadata":{"timestamp":5}},"actual":{"value":"2","metadata":{}}}}}`,
	`{"twin":{"a":{"optional":true},"b":{"optional":false},"c":{"optional":"true"}}}`,
	`{"twin":{"a":{"optional":1}}}`, `{"twin":{"a":{"optional":{}}}}`,
	`{"twin":{"a":{"metadata":{"type":"int"}},"b":{"metadata":{"type":5}}}}`, `{"twin":{"a":{"metadata":{"type":null}}}}`,
	`{"twin":{"a":{"expected_version":{"cloud":1,"edge":2},"actual_version":{"cloud":-3,"edge":0}}}}`,
	`{"twin":{"a":{"expected_version":{"cloud":"1"}}}}`, `{"twin":{"a":{"expected_version":[]}}}`,
	`{"twin":{"a":{"actual":{"value":7}}}}`, `{"twin":{"a":{"actual":{"value":true}}}}`, `{"twin":{"a":{"actual":{"value":["x"]}}}}`,
	`{"twin":{"a":{"actual":{"metadata":{"timestamp":"1"}}}}}`, `{"twin":{"a":{"actual":{"metadata":{"timestamp":null}}}}}`,
	`{"twin":{"a":{"actual":"21"}}}`, `{"twin":{"a":{"actual":[]}}}`, `{"twin":{"a":5}}`, `{"twin":{"a":true}}`,
	// Strings: escapes, surrogates, UTF-8 broken and not, controls.
	`{"event_id":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00"}`,
	`{"event_id":"\ud800"}`, `{"event_id":"\udc00"}`, `{"event_id":"\ud800\u0041"}`, `{"event_id":"\ud800\ud800\udc00"}`,
	`{"event_id":"\ud83d\ude00x\ud83d"}`, `{"event_id":"\udbff\udfff"}`, `{"event_id":"\ud800\n"}`, `{"event_id":"\ud800\"}`,
	`{"event_id":"\uDFFF\uD800\uDC00"}`, `{"event_id":"\u0000\u001f\u007f\u2028\u2029"}`,
	"{\"event_id\":\"\xff\"}", "{\"event_id\":\"a\xc3(b\"}", "{\"event_id\":\"\xed\xa0\x80\"}", "{\"event_id\":\"\xf4\x90\x80\x80\"}",
	"{\"event_id\":\"\xe2\x82\"}", "{\"event_id\":\"é€😀\"}", "{\"event_id\":\"\x7f\"}", "{\"event_id\":\"\x01\"}", "{\"event_id\":\"\t\"}",
	"{\"event_id\":\"\\\xff\"}", `{"event_id":"\x"}`, `{"event_id":"\'"}`, `{"event_id":"\u12G4"}`, `{"event_id":"\u12"}`,
	`{"event_id":"\u`, `{"event_id":"\`, `{"event_id":"abc`, `{"event_id":"<>&"}`,
	"{\"twin\":{\"\xff\":{},\"\\u00e9\":null,\"\":{},\"a\\u0000\":{}}}",
	// Keys: folded case, ſ and the Kelvin sign, repeated, escaped.
	`{"EVENT_ID":"x","Timestamp":5,"TWIN":{"t":{"ACTUAL":{"VALUE":"1"},"Optional":true,"MetaData":{"TYPE":"int"}}}}`,
	`{"event_ID":"x","eVeNt_Id":"y"}`, `{"\u0065vent_id":"x"}`, `{"timeſtamp":5}`, `{"timeſtamp":5,"timestamp":6}`,
	`{"TIMESTAMP":1,"timestamp":2,"TimeStamp":3}`, `{"state":"online","ſtate":"offline","STATE":"unknown"}`,
	"{\"\u212aey\":1,\"twin\":{\"a\":{\"expected_\u212a\":{}}}}", `{"event_id ":"x"," event_id":"y","eventid":"z"}`,
	`{"node_name":"edge-1"}`, `{"NODE_NAME":"x"}`, `{"node_name":1}`, `{"node_name":null}`, `{"node_ſame":"x","nodE_namE":"y"}`,
	`{"event_id":"a","event_id":"b"}`, `{"event_id":"a","event_id":null}`, `{"event_id":"a","event_id":5}`,
	`{"twin":{"a":{"actual":{"value":"1"}}},"twin":{"b":{}}}`, `{"twin":{"a":{}},"twin":null,"twin":{"b":{}}}`,
	`{"twin":{"a":{"actual":{"value":"1"},"actual":{"metadata":{"timestamp":3}}}}}`,
	`{"twin":{"a":{"actual":{"value":"1"}},"a":{"expected":{}}}}`, `{"twin":{"a":{"actual":{"value":"1"},"actual":null}}}`,
	`{"twin":{"a":{"optional":true,"optional":null}}}`, `{"twin":{"a":{"expected_version":{"cloud":1},"expected_version":{"edge":2}}}}`,
	// Numbers.
	`{"timestamp":1.5}`, `{"timestamp":1e3}`, `{"timestamp":1E3}`, `{"timestamp":1e+3}`, `{"timestamp":-0}`, `{"timestamp":0}`,
	`{"timestamp":9223372036854775807}`, `{"timestamp":9223372036854775808}`, `{"timestamp":-9223372036854775808}`,
	`{"timestamp":-9223372036854775809}`, `{"timestamp":12345678901234567890}`, `{"timestamp":99999999999999999999999}`,
	`{"timestamp":00}`, `{"timestamp":01}`, `{"timestamp":-}`, `{"timestamp":-a}`, `{"timestamp":1.}`, `{"timestamp":.5}`,
	`{"timestamp":1e}`, `{"timestamp":1e+}`, `{"timestamp":+1}`, `{"timestamp":"5"}`, `{"timestamp":""}`, `{"timestamp":null}`,
	`{"timestamp":true}`, `{"timestamp":[]}`, `{"timestamp":{}}`, `{"timestamp":0.0}`, `{"timestamp":-0.0e-0}`, `{"timestamp":1`,
	`{"code":400,"x":1.5e308,"y":-1e-400,"z":123456789012345678901234567890}`,
	// Unknown members of every shape, valid and not.
	`{"x":{"y":[1,2,{"z":null}],"w":"\u00e9","v":[[],{},[[]]]},"twin":{}}`, `{"x":[1,2,]}`, `{"x":[,1]}`, `{"x":[1 2]}`,
	`{"x":{"a":1,}}`, `{"x":{,}}`, `{"x":{"a"}}`, `{"x":{"a":}}`, `{"x":{a:1}}`, `{"x":{"a" 1}}`, `{"x":tru}`, `{"x":nul}`,
	`{"x":falsy}`, `{"x":True}`, `{"x":'a'}`, `{"x":[}`, `{"x":]}`, `{"x":{]}`, `{"x":[1}`, `{"x"::1}`, `{"x":1,,"y":2}`,
	`{,"x":1}`, `{"x":1 "y":2}`, `{"x":1}{`, `{"x":"a"b"}`, `{"x":-01}`, `{"x":1.2.3}`, `{"x":[1,[2,[3,[4]]]]}`,
	// Membership and device lists, repeated lists decoding into what is
	// there.
	`{"devices":null}`, `{"devices":[]}`, `{"devices":[null]}`, `{"devices":[{}]}`, `{"devices":[1]}`, `{"devices":[{"id":1}]}`,
	`{"devices":{}}`, `{"devices":"x"}`, `{"devices":[{},]}`, `{"devices":[{} {}]}`,
	`{"devices":[{"id":"a","name":"n","description":"d","state":"s","last_online":"l","attributes":{"x":{"value":"v","optional":false,"metadata":{"type":"int"}},"y":null},"twin":{"t":{"expected":{"value":"1"}}},"origin":"local"}]}`,
	`{"devices":[{"id":"a","twin":{"x":{}}}],"devices":[{"name":"b"}]}`,
	`{"devices":[{"id":"a"},{"id":"b"}],"devices":[{"name":"c"}],"devices":[{},{}]}`,
	`{"devices":[{"id":"a"},{"id":"b"},{"id":"c"}],"devices":[],"devices":[{},{}]}`,
	`{"devices":[{"id":"a","twin":{"x":{"actual":{"value":"1"}}}}],"devices":[{"twin":{"x":{"expected":{}}}}]}`,
	`{"devices":[{"attributes":{"a":{"value":null,"optional":null,"metadata":null}}}]}`, `{"devices":[{"attributes":[]}]}`,
	`{"devices":[{"attributes":{"a":{"value":1}}}]}`, `{"devices":[{"attributes":{"a":"x"}}]}`,
	`{"added_devices":[{"id":"a"}],"removed_devices":[{"id":"b","name":"b"}],"event_id":"x","timestamp":1795715925210}`,
	`{"added_devices":null,"removed_devices":[]}`, `{"added_devices":[null,{"id":"x"}]}`, `{"Added_Devices":[{"ID":"a"}]}`,
	`{"id":"default/x","name":"x","twin":{"t":{"expected":{"value":"20","metadata":{"timestamp":1}},"optional":true,"metadata":{"type":"int"},"expected_version":{"cloud":0,"edge":1}}},"origin":"cloud"}`,
	`{"id":"x","origin":5}`, `{"id":"x","origin":null,"ORIGIN":"local"}`, `{"id":"x","attributes":{},"twin":{}}`,
	`{"state":"online","event_id":"f-2","timestamp":1700000000000}`, `{"state":5}`, `{"state":null}`, `{"state":["online"]}`,
}

func TestCodecOddDocuments(t *testing.T) {
	for _, doc := range oddDocuments {
		compareDecode(t, []byte(doc))
	}
}

// TestCodecGoldenInputs runs every JSON document of the golden files, in
// and out, through both codecs.
func TestCodecGoldenInputs(t *testing.T) {
	for _, doc := range goldenDocuments(t) {
		compareDecode(t, []byte(doc))
	}
}

// goldenDocuments returns the JSON of every line of testdata/*.golden.
func goldenDocuments(tb testing.TB) []string {
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden files: %v", err)
	}
	expand := strings.NewReplacer("$X513", strings.Repeat("x", 513), "$K129", strings.Repeat("k", 129))
	var docs []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		for line := range strings.Lines(expand.Replace(string(b))) {
			if i := strings.IndexAny(line, "{["); i >= 0 && line[0] != '#' {
				docs = append(docs, strings.TrimSpace(line[i:]))
			}
		}
	}
	return docs
}

// TestCodecDepth checks encoding/json's nesting limit, in a member the
// documents do not have and in one they do.
func TestCodecDepth(t *testing.T) {
	for _, depth := range []int{maxDepth - 2, maxDepth - 1, maxDepth, maxDepth + 1} {
		nested := strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) // inside the document's object
		compareDecode(t, []byte(`{"x":`+nested+`}`))
		objects := strings.Repeat(`{"x":`, depth-1) + "1" + strings.Repeat("}", depth-1)
		compareDecode(t, []byte(`{"devices":[`+objects+`]}`))
	}
}

// TestCodecEncode encodes values the plugin never decodes from a document
// (strings that need escaping everywhere, extreme numbers, empty and nil
// maps, nil pointers in maps) with both codecs.
func TestCodecEncode(t *testing.T) {
	for _, s := range oddStrings {
		ts := int64(len(s))
		v := &s
		tw := &MsgTwin{Expected: &TwinValue{Value: v, Metadata: &ValueMetadata{Timestamp: ts}}, Actual: &TwinValue{Value: v},
			Optional: boolPtr(len(s)%2 == 0), Metadata: &TypeMetadata{Type: s}, ExpectedVersion: &TwinVersion{Cloud: ts, Edge: -ts}}
		twins := map[string]*MsgTwin{s: tw, s + "a": nil, "a" + s: {}, "\u00e9" + s: {Actual: &TwinValue{}, Metadata: &TypeMetadata{}}}
		rec := &record{Device: Device{ID: s, Name: s, Description: s, State: s, LastOnline: s,
			Attributes: map[string]*MsgAttr{s: {Value: s, Optional: boolPtr(true), Metadata: &TypeMetadata{Type: s}}, s + "x": nil, "": {}},
			Twin:       twins}, Origin: s}
		compareEncode(t, "record", rec, decodeCases[5].encode)
		compareEncode(t, "TwinUpdate", &TwinUpdate{BaseMessage: BaseMessage{EventID: s, Timestamp: ts}, Twin: twins}, decodeCases[0].encode)
		compareEncode(t, "MembershipDetail", &MembershipDetail{BaseMessage: BaseMessage{EventID: s}, Devices: []Device{rec.Device, {}, {ID: s}}}, decodeCases[4].encode)
		compareDerived(t, rec)
	}
	for _, ts := range []int64{0, 1, -1, 9, 10, -10, 99, 1795715523600, math.MaxInt64, math.MinInt64, math.MinInt64 + 1} {
		compareDerived(t, &TwinUpdate{BaseMessage: BaseMessage{Timestamp: ts}, Twin: map[string]*MsgTwin{
			"t": {Expected: &TwinValue{Metadata: &ValueMetadata{Timestamp: ts}}, ActualVersion: &TwinVersion{Cloud: ts, Edge: ts}}}})
	}
	for _, v := range []any{
		&record{}, &record{Device: Device{Attributes: map[string]*MsgAttr{}, Twin: map[string]*MsgTwin{}}},
		&MembershipUpdate{}, &MembershipUpdate{AddDevices: []Device{}, RemoveDevices: []Device{{}}},
		&MembershipDetail{}, &MembershipDetail{Devices: []Device{}}, &TwinUpdate{}, &TwinUpdate{Twin: map[string]*MsgTwin{}},
	} {
		for _, c := range decodeCases {
			if c.encode != nil && reflect.TypeOf(v) == reflect.TypeOf(mustRun(c)) {
				compareEncode(t, c.name, v, c.encode)
			}
		}
		compareDerived(t, v)
	}
}

// mustRun returns a zero value of the case's type.
func mustRun(c decodeCase) any {
	v, _, _, _ := c.run([]byte(`null`))
	return v
}

// oddStrings need every kind of escaping, or none.
var oddStrings = []string{
	"", "a", "temp", `"quoted"`, `back\slash`, "<script>&amp;</script>", "\u2028\u2029", "a\u2028b",
	"\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x20\x7f", "\xff\xfe", "a\xc3(b", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80",
	"é€😀", "\t\n\r\b\f", "/slash/", strings.Repeat("x", 600), strings.Repeat("é<", 100), "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff",
}

// TestCodecRandom encodes random twins with both codecs and decodes what
// they encode, also broken by a byte here and there.
func TestCodecRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		rec := randomRecord(r)
		std, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if own := rec.appendJSON(nil); !bytes.Equal(std, own) {
			t.Fatalf("record encodes differently:\n encoding/json: %s\n codec:         %s", std, own)
		}
		compareDecode(t, std)
		broken := bytes.Clone(std)
		for range 1 + r.IntN(3) {
			const noise = "{}[],:\"\\ntfu0-.eE\x00\xff "
			broken[r.IntN(len(broken))] = noise[r.IntN(len(noise))]
		}
		compareDecode(t, broken)
	}
}

func randomRecord(r *rand.Rand) *record {
	str := func() string {
		if r.IntN(3) == 0 {
			return oddStrings[r.IntN(len(oddStrings))]
		}
		return strconv.Itoa(r.IntN(100))
	}
	maybe := func() bool { return r.IntN(2) == 0 }
	value := func() *TwinValue {
		if maybe() {
			return nil
		}
		v := &TwinValue{}
		if maybe() {
			s := str()
			v.Value = &s
		}
		if maybe() {
			v.Metadata = &ValueMetadata{Timestamp: r.Int64N(3)}
		}
		return v
	}
	version := func() *TwinVersion {
		if maybe() {
			return nil
		}
		return &TwinVersion{Cloud: r.Int64() - math.MaxInt64/2, Edge: r.Int64N(10)}
	}
	rec := &record{Device: Device{ID: str(), Name: str()}, Origin: []string{"", originCloud, originLocal}[r.IntN(3)]}
	if maybe() {
		rec.Twin = map[string]*MsgTwin{}
		for range r.IntN(5) {
			tw := &MsgTwin{Expected: value(), Actual: value(), ExpectedVersion: version(), ActualVersion: version()}
			if maybe() {
				tw.Optional = boolPtr(maybe())
			}
			if maybe() {
				tw.Metadata = &TypeMetadata{Type: str()}
			}
			if r.IntN(5) == 0 {
				tw = nil
			}
			rec.Twin[str()] = tw
		}
	}
	if maybe() {
		rec.Attributes = map[string]*MsgAttr{str(): {Value: str()}, str(): nil}
	}
	return rec
}

// FuzzCodec holds the codec to encoding/json on any input: the same
// verdict, the same value, and the same encoding of it and of the
// documents built from it. Its seed corpus, in testdata/fuzz/FuzzCodec,
// has the golden files' documents and the odd ones above.
func FuzzCodec(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		compareDecode(t, data)
	})
}

// TestCodecErrors checks that a document that does not decode says what
// is wrong and where.
func TestCodecErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"twin":{"t":{"actual":{"value":7}}}}`, `json: twin.t.actual.value: want a string, got a number (at byte 32)`},
		{`{"event_id":"a","timestamp":"5"}`, `json: timestamp: want an integer, got a string (at byte 28)`},
		{`{"timestamp":1.5}`, `json: timestamp: want an integer, got 1.5 (at byte 13)`},
		{`{"timestamp":9223372036854775808}`, `json: timestamp: the integer 9223372036854775808 is out of range (at byte 13)`},
		{`{"twin":"not an object"}`, `json: twin: want an object, got a string (at byte 8)`},
		{`{"event_id":"m1","twin":`, `json: twin: unexpected end of the document, looking for a value (at byte 24)`},
		{`{"devices":[{"id":"a"},{"id":5}]}`, `json: devices[1].id: want a string, got a number (at byte 29)`},
		{`{"x":[1,]}`, `json: x[1]: invalid character ']' looking for a value after a comma in an array (at byte 8)`},
		{`{"a":1}x`, `json: invalid character 'x' looking for the end of the document (at byte 7)`},
		{"{\"a\":\"\x01\"}", `json: a: invalid character byte 0x01 looking for a character in a string (control characters must be escaped) (at byte 6)`},
		{`{"state":"on`, `json: state: unexpected end of the document, looking for the end of a string (at byte 12)`},
		{``, `json: unexpected end of the document, looking for a value (at byte 0)`},
	} {
		var v MembershipDetail
		var u TwinUpdate
		err := v.decodeJSON([]byte(c.doc))
		if strings.Contains(c.doc, "twin") || strings.Contains(c.doc, "state") {
			err = u.decodeJSON([]byte(c.doc))
		}
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.doc, err, c.want)
		}
	}
}

// TestCodecAllocations keeps the codec allocation-light on the update
// path: decoding allocates only what the document holds, and encoding into
// a buffer with room allocates nothing.
func TestCodecAllocations(t *testing.T) {
	payload := []byte(`{"event_id":"17","timestamp":0,"twin":{"temp":{"actual":{"value":"23"}}}}`)
	stored := []byte(`{"id":"default/d0","name":"d0","twin":{"temp":{"expected":{"value":"20","metadata":{"timestamp":1795715523600}},"actual":{"value":"23","metadata":{"timestamp":1795715523600}},"optional":true,"metadata":{"type":"string"},"actual_version":{"cloud":0,"edge":7}}},"origin":"local"}`)
	var rec record
	if err := rec.decodeJSON(stored); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	for _, c := range []struct {
		name string
		max  float64
		f    func()
	}{
		// the map and its group, the property with its parts, and the
		// event id, key and value
		{"decode update", 6, func() {
			var u TwinUpdate
			if err := u.decodeJSON(payload); err != nil {
				t.Fatal(err)
			}
		}},
		// the map and its group, the property with its parts; the
		// strings share the stored bytes
		{"decode record", 3, func() {
			var r record
			if err := r.decodeJSON(stored); err != nil {
				t.Fatal(err)
			}
		}},
		{"encode record", 0, func() { buf = rec.appendJSON(buf[:0]) }},
		{"encode update", 0, func() { buf = (&TwinUpdate{Twin: rec.Twin}).appendJSON(buf[:0]) }},
	} {
		if n := testing.AllocsPerRun(100, c.f); n > c.max {
			t.Errorf("%s: %v allocations, want at most %v", c.name, n, c.max)
		}
	}
	if !utf8.Valid(buf) {
		t.Error("encoded document is not UTF-8")
	}
}

// TestCodecFields checks decoder.field against fieldNames, in exact and
// folded case.
func TestCodecFields(t *testing.T) {
	for f, name := range fieldNames {
		if name == "" {
			continue
		}
		for _, key := range []string{name, strings.ToUpper(name), strings.ReplaceAll(name, "s", "ſ")} {
			d := decoder{key: []byte(key)}
			if got := d.field(); got != f {
				t.Errorf("field(%q) = %d, want %d", key, got, f)
			}
		}
	}
	for _, key := range []string{"", "x", "event", "event_idx", "Event-Id", "ids"} {
		d := decoder{key: []byte(key)}
		if got := d.field(); got != fUnknown {
			t.Errorf("field(%q) = %d, want fUnknown", key, got)
		}
	}
}
