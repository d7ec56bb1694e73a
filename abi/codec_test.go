package abi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// specExample is the worked example of SPEC.md section 2, byte for byte.
const specExample = "01" + "00" + "0068e5cf8b010000" +
	"0200" + "0000" + "0000" + "0300" + "0400" + "0400" + "0600" + "02000000" +
	"6d31" + "617070" + "75736572" + "6563686f" + "64656d6f2f78" + "6869"

func specMessage() Message {
	return Message{
		Header:  Header{ID: "m1", Timestamp: 1700000000000},
		Route:   Route{Source: "app", Group: "user", Operation: "echo", Resource: "demo/x"},
		Content: []byte("hi"),
	}
}

func TestSpecExample(t *testing.T) {
	m := specMessage()
	got, err := Append(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(got); h != specExample {
		t.Fatalf("encoding differs from SPEC.md:\n got %s\nwant %s", h, specExample)
	}
	if len(got) != 49 || m.EncodedLen() != 49 {
		t.Fatalf("length %d (EncodedLen %d), SPEC.md says 49", len(got), m.EncodedLen())
	}
	var back Message
	if err := Decode(got, &back); err != nil {
		t.Fatal(err)
	}
	if !equal(&m, &back) {
		t.Fatalf("decode(encode(m)) = %+v, want %+v", back, m)
	}
}

func equal(a, b *Message) bool {
	return a.Header == b.Header && a.Route == b.Route && bytes.Equal(a.Content, b.Content)
}

func randString(r *rand.Rand, max int) string {
	b := make([]byte, r.IntN(max+1))
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	if r.IntN(8) == 0 && len(b) > 0 {
		return string(b) + "é☃" // multi-byte UTF-8
	}
	return string(b)
}

// TestRoundTripProperty checks decode(encode(m)) == m for random messages,
// through every encoder and decoder.
func TestRoundTripProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		m := Message{
			Header: Header{ID: randString(r, 40), ParentID: randString(r, 40),
				Timestamp: r.Int64() - r.Int64(), ResourceVersion: randString(r, 10), Sync: r.IntN(2) == 1},
			Route: Route{Source: randString(r, 20), Group: randString(r, 10),
				Operation: randString(r, 10), Resource: randString(r, 300)},
		}
		if n := r.IntN(2000); n > 0 {
			m.Content = make([]byte, n)
			for j := range m.Content {
				m.Content[j] = byte(r.Uint32())
			}
		}
		enc, err := Append([]byte("prefix"), &m)
		if err != nil {
			t.Fatal(err)
		}
		enc = enc[len("prefix"):]
		buf := make([]byte, m.EncodedLen())
		if n, err := EncodeTo(buf, &m); err != nil || n != len(enc) || !bytes.Equal(buf, enc) {
			t.Fatalf("EncodeTo differs from Append (n=%d, err=%v)", n, err)
		}
		var copied, aliased Message
		if err := Decode(enc, &copied); err != nil {
			t.Fatalf("decode %d: %v", i, err)
		}
		if err := DecodeAlias(enc, &aliased); err != nil {
			t.Fatalf("decode alias %d: %v", i, err)
		}
		if !equal(&m, &copied) || !equal(&m, &aliased) {
			t.Fatalf("round trip %d differs:\n in %+v\nout %+v", i, m, copied)
		}
		for j := range enc {
			enc[j] = 0xEE // Decode must not share memory with its input.
		}
		if !equal(&m, &copied) {
			t.Fatalf("Decode result changed when its input was overwritten")
		}
	}
}

func TestEncodeRejectsOversizedFields(t *testing.T) {
	m := Message{Route: Route{Resource: strings.Repeat("r", MaxStringLen+1)}}
	if _, err := Append(nil, &m); err == nil || !strings.Contains(err.Error(), "resource") {
		t.Fatalf("want an error naming resource, got %v", err)
	}
	small := specMessage()
	if _, err := EncodeTo(make([]byte, 10), &small); err == nil || !strings.Contains(err.Error(), "needs 49") {
		t.Fatalf("want a short-buffer error, got %v", err)
	}
}

func TestDecodeErrorsNameTheProblem(t *testing.T) {
	good, _ := hex.DecodeString(specExample)
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "shorter than the 28-byte fixed part"},
		{"format", mutate(func(b []byte) []byte { b[0] = 2; return b }), "format byte is 0x02"},
		{"flags", mutate(func(b []byte) []byte { b[1] = 0x80; return b }), "unknown flag bits 0x80"},
		{"trailing", mutate(func(b []byte) []byte { return append(b, 0) }), "add up to 49 bytes, envelope is 50"},
		{"truncated", good[:48], "add up to 49 bytes, envelope is 48"},
		{"huge content", mutate(func(b []byte) []byte { b[27] = 0xFF; return b }), "content length"},
		{"utf8", mutate(func(b []byte) []byte { b[28] = 0xFF; return b }), "id is not valid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m Message
			err := Decode(c.in, &m)
			if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrMalformed mentioning %q", err, c.want)
			}
		})
	}
}

func TestReplyPacking(t *testing.T) {
	ptr, n, code := UnpackReply(PackReply(0xFFFFFFF0, 0x7FFFFFFF))
	if ptr != 0xFFFFFFF0 || n != 0x7FFFFFFF || code != OK {
		t.Fatalf("unpack = %x %x %v", ptr, n, code)
	}
	if _, _, code := UnpackReply(-int64(NoHandler)); code != NoHandler {
		t.Fatalf("code = %v, want no handler", code)
	}
	if Denied.String() != "denied" || Code(99).String() != "code 99" {
		t.Fatal("code names")
	}
}

func TestReply(t *testing.T) {
	m := specMessage()
	r := m.Reply(OpResponse, []byte("ok"))
	if r.Header.ParentID != "m1" || r.Header.ID != "" || r.Route.Operation != OpResponse || r.Route.Resource != "demo/x" {
		t.Fatalf("reply = %+v", r)
	}
}

// FuzzDecode checks that no input makes the decoder panic, and that what
// decodes re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seeds/*.hex")
	for _, p := range seeds {
		h, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		b, err := hex.DecodeString(strings.TrimSpace(string(h)))
		if err != nil {
			f.Fatalf("seed %s: %v", p, err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		if err := Decode(b, &m); err != nil {
			return
		}
		again, err := Append(nil, &m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
	})
}

func BenchmarkEncodeDecode256(b *testing.B) {
	m := specMessage()
	m.Content = bytes.Repeat([]byte("x"), 256)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		enc, _ := Append(buf[:0], &m)
		var out Message
		if err := Decode(enc, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNewError(t *testing.T) {
	err := NewError("queue full", Busy)
	if err.Error() != "queue full" || !errors.Is(err, Busy) || errors.Is(err, Timeout) {
		t.Fatalf("NewError: %v, is busy %v", err, errors.Is(err, Busy))
	}
	if wrapped := errors.Join(errors.New("send"), err); !errors.Is(wrapped, Busy) {
		t.Fatal("a wrapped coded error lost its code")
	}
}

func TestChainWaits(t *testing.T) {
	c := Chain{Waiting: "a b twin-1"}
	for _, name := range []string{"a", "b", "twin-1"} {
		if !c.Waits(name) {
			t.Errorf("Waits(%q) = false in %q", name, c.Waiting)
		}
	}
	for _, name := range []string{"", "twin", "a b", "c"} {
		if c.Waits(name) {
			t.Errorf("Waits(%q) = true in %q", name, c.Waiting)
		}
	}
	if (Chain{}).Waits("") {
		t.Error("an empty chain waits for the empty name")
	}
}
