//go:build !wasip1

package sdk

import (
	"bytes"
	"strings"
	"testing"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// envelopes are requests whose decoding takes each of decodeView's paths:
// ASCII strings within and past the 64 bytes it tests without a loop,
// empty fields anywhere, no content, and non-ASCII strings.
func envelopes() []abi.Message {
	long := strings.Repeat("r", 70)
	return []abi.Message{
		{Header: abi.Header{ID: "id-echo", Timestamp: 1700000000000},
			Route: abi.Route{Source: "test", Group: "user", Operation: "echo", Resource: "demo/x"}, Content: []byte("hi")},
		{Header: abi.Header{ID: "0b3c4b1e-4a52-4f0e-9d7c-2f1c8a1d2e3f", ParentID: "p", ResourceVersion: "42", Sync: true},
			Route: abi.Route{Source: "app", Group: "user", Operation: "query", Resource: "devices/thermometer-1/state"}},
		{Route: abi.Route{Resource: long}, Content: bytes.Repeat([]byte{0xff}, 300)},
		{Header: abi.Header{ID: long}, Route: abi.Route{Operation: "o"}},
		{},
		{Header: abi.Header{ID: "ünïcode"}, Route: abi.Route{Resource: "r"}, Content: []byte("c")},
		{Route: abi.Route{Resource: long + "é"}},
		{Route: abi.Route{Source: strings.Repeat("s", 63) + "é"}},
	}
}

// exchangeCopy returns env in a buffer like the exchange buffer: spare
// capacity past its end, filled with bytes that are not ASCII.
func exchangeCopy(env []byte) []byte {
	b := bytes.Repeat([]byte{0xEE}, max(len(env)+1, minBuffer))
	copy(b, env)
	return b[:len(env)]
}

// TestDecodeViewIsDecodeAlias checks decodeView against abi.DecodeAlias on
// valid envelopes, decoding each twice into the same Message (the second
// time takes the path that stores only lengths), and once more after a
// handler-like change of the Message.
func TestDecodeViewIsDecodeAlias(t *testing.T) {
	var m Message
	for i, msg := range envelopes() {
		env, err := abi.Append(nil, &msg)
		if err != nil {
			t.Fatal(err)
		}
		b := exchangeCopy(env)
		var want abi.Message
		if err := abi.DecodeAlias(b, &want); err != nil {
			t.Fatal(err)
		}
		for pass := range 3 {
			if pass == 2 {
				m.Reply([]byte("changed"))
			}
			if err := decodeView(b, &m); err != nil {
				t.Fatalf("envelope %d, pass %d: %v", i, pass, err)
			}
			got := abi.Message(m)
			if got.Header != want.Header || got.Route != want.Route || !bytes.Equal(got.Content, want.Content) ||
				(got.Content == nil) != (want.Content == nil) || cap(got.Content) != cap(want.Content) {
				t.Fatalf("envelope %d, pass %d:\n got %+v\nwant %+v", i, pass, got, want)
			}
			if len(got.Content) > 0 && &got.Content[0] != &b[len(b)-len(got.Content)] {
				t.Fatalf("envelope %d: content is not a view of the envelope", i)
			}
		}
	}
}

// TestDecodeViewRefusesWhatDecodeAliasRefuses feeds decodeView broken
// envelopes and envelopes in buffers without the capacity it needs.
func TestDecodeViewRefusesWhatDecodeAliasRefuses(t *testing.T) {
	msg := envelopes()[1]
	env, err := abi.Append(nil, &msg)
	if err != nil {
		t.Fatal(err)
	}
	broken := map[string][]byte{
		"short":        env[:27],
		"format":       append([]byte{2}, env[1:]...),
		"flags":        append([]byte{1, 2}, env[2:]...),
		"too long":     append(bytes.Clone(env), 0),
		"truncated":    env[:len(env)-1],
		"bad UTF-8":    bytes.Replace(bytes.Clone(env), []byte("query"), []byte("qu\xffry"), 1),
		"content 2^31": append(append(bytes.Clone(env[:24]), 0, 0, 0, 0x80), env[28:]...),
	}
	for name, e := range broken {
		var m Message
		want := abi.DecodeAlias(e, (*abi.Message)(&m))
		got := decodeView(exchangeCopy(e), &m)
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Errorf("%s: decodeView says %v, abi.DecodeAlias %v", name, got, want)
		}
	}
	// Without spare capacity the views are abi.DecodeAlias's.
	var m Message
	tight := bytes.Clone(env)
	if err := decodeView(tight[:len(tight):len(tight)], &m); err != nil || m.Route.Resource != msg.Route.Resource {
		t.Fatalf("decodeView in a tight buffer: %v, %+v", err, m)
	}
}

// TestDecodeViewFindsEveryNonASCIIByte puts a byte with its high bit set
// at every position of strings of every length up to past the 64 bytes
// decodeView tests without a loop, and checks that it then leaves the
// envelope to abi.DecodeAlias, which refuses it (a lone 0xFF is not UTF-8).
func TestDecodeViewFindsEveryNonASCIIByte(t *testing.T) {
	var m Message
	for n := 0; n <= 80; n++ {
		msg := abi.Message{Route: abi.Route{Resource: strings.Repeat("r", n)}, Content: []byte{0xFF}}
		env, err := abi.Append(nil, &msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeView(exchangeCopy(env), &m); err != nil || m.Route.Resource != msg.Route.Resource {
			t.Fatalf("%d ASCII bytes: %v", n, err)
		}
		for i := range n {
			bad := bytes.Clone(env)
			bad[fixedLen+i] = 0xFF
			if err := decodeView(exchangeCopy(bad), &m); err == nil {
				t.Fatalf("%d bytes of strings with byte %d not ASCII: accepted", n, i)
			}
		}
	}
}

// FuzzDecodeView checks that decodeView and abi.DecodeAlias agree on any
// input.
func FuzzDecodeView(f *testing.F) {
	for _, msg := range envelopes() {
		env, err := abi.Append(nil, &msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
	}
	f.Fuzz(func(t *testing.T, env []byte) {
		var got, want Message
		errWant := abi.DecodeAlias(env, (*abi.Message)(&want))
		errGot := decodeView(exchangeCopy(env), &got)
		if (errGot == nil) != (errWant == nil) {
			t.Fatalf("decodeView: %v, abi.DecodeAlias: %v", errGot, errWant)
		}
		if errGot == nil && (got.Header != want.Header || got.Route != want.Route || !bytes.Equal(got.Content, want.Content)) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}

// TestPutReplyIsTheEncoding checks putReply against abi's encoding of the
// same reply, with fields back to back (a request's own), scattered,
// empty, and content already in place.
func TestPutReplyIsTheEncoding(t *testing.T) {
	for i, msg := range envelopes() {
		env, err := abi.Append(nil, &msg)
		if err != nil {
			t.Fatal(err)
		}
		var m Message
		if err := decodeView(exchangeCopy(env), &m); err != nil {
			t.Fatal(err)
		}
		parent := m.Header.ID
		scattered := m.Clone()
		scattered.Route.Group = "another group"
		for _, r := range []*Message{m.Reply(m.Content), scattered} {
			want, err := abi.Append(nil, &abi.Message{
				Header:  abi.Header{ParentID: parent, ResourceVersion: r.Header.ResourceVersion},
				Route:   r.Route,
				Content: r.Content,
			})
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, replyLen(parent, r.Header.ResourceVersion, &r.Route, len(r.Content)))
			putReply(b, parent, r.Header.ResourceVersion, &r.Route, 0, r.Content)
			if !bytes.Equal(b, want) {
				t.Fatalf("envelope %d:\n got %q\nwant %q", i, b, want)
			}
			head := len(b) - len(r.Content)
			copy(b[head:], r.Content)
			putReply(b, parent, r.Header.ResourceVersion, &r.Route, 0, b[head:])
			if !bytes.Equal(b, want) {
				t.Fatalf("envelope %d, content in place:\n got %q\nwant %q", i, b, want)
			}
		}
	}
}

// TestRouteLayout checks what routeStrings relies on: Route's four strings
// lie back to back.
func TestRouteLayout(t *testing.T) {
	var r Route
	if unsafe.Offsetof(r.Resource)-unsafe.Offsetof(r.Source) != 3*unsafe.Sizeof("") ||
		unsafe.Sizeof(r) != 4*unsafe.Sizeof("") {
		t.Fatal("Route's strings are not back to back")
	}
	a := routeStrings(&r)
	a[0], a[1], a[2], a[3] = "s", "g", "o", "r"
	if r != (Route{Source: "s", Group: "g", Operation: "o", Resource: "r"}) {
		t.Fatalf("route = %+v", r)
	}
}
