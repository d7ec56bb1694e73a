//go:build !wasip1

package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

// clock is the fixed time of the golden tests: 1795715523600 ms, as in the
// captured edgecore session.
var clock = time.UnixMilli(1795715523600)

// Each testdata/*.golden file is a conversation with the plugin, one line
// per message, in the notation of the captured edgecore session:
//
//	> topic payload                      an MQTT publish reaching the twin
//	@ source operation resource content  another bus message (cloud, host/twin)
//	< topic payload                      a publish the plugin makes
//	^ resource content                   a message the plugin sends upstream
//
// The expected lines after an input are exactly what the plugin sends while
// handling it, in order; JSON is compared by value, "$UUID" in an
// expected document matches a random UUID (the event ids the plugin makes,
// as edgecore does), and a string holding a JSON document matches a string
// holding the same document (content the cloud takes as a JSON string).
// $X513 stands for 513 "x" bytes and $K129 for 129 "k" bytes. Blank lines
// and # comments are skipped.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".golden"), func(t *testing.T) { runGolden(t, f) })
	}
}

// step is one input and the output it must produce.
type step struct {
	line int
	in   *sdk.Message
	want []string // "< topic json" or "^ resource json"
}

func runGolden(t *testing.T, path string) {
	steps := parseGolden(t, path)
	h := sdktest.New()
	h.Name = "devicetwin"
	h.Config = []byte(`{"node_name":"edge-1"}`)
	h.Clock = func() time.Time { return clock }
	for _, s := range steps {
		before := len(h.Sent())
		reply, err := h.Call(s.in)
		if err != nil {
			t.Fatalf("line %d: call failed: %v", s.line, err)
		}
		if reply == nil || reply.Route.Operation != "response" {
			t.Fatalf("line %d: reply = %+v, want an empty response", s.line, reply)
		}
		var got []string
		for _, m := range h.Sent()[before:] {
			got = append(got, sentLine(t, m))
		}
		if len(got) != len(s.want) {
			t.Fatalf("line %d: the plugin sent %d messages, want %d:\n%s", s.line, len(got), len(s.want), strings.Join(got, "\n"))
		}
		for i := range got {
			if !sameLine(got[i], s.want[i]) {
				t.Errorf("line %d: message %d:\n got %s\nwant %s", s.line, i+1, got[i], s.want[i])
			}
		}
	}
}

// sentLine renders a message the plugin sent in the golden notation.
func sentLine(t *testing.T, m *sdk.Message) string {
	switch {
	case m.Route.Group == busGroup && m.Route.Operation == "publish":
		return "< " + m.Route.Resource + " " + string(m.Content)
	case m.Route.Group == upstreamGroup && m.Route.Operation == "update":
		return "^ " + m.Route.Resource + " " + string(m.Content)
	}
	t.Fatalf("unexpected message %+v", m.Route)
	return ""
}

// sameLine compares two output lines, their JSON by value.
func sameLine(got, want string) bool {
	gk, gj, _ := strings.Cut(got[2:], " ")
	wk, wj, _ := strings.Cut(want[2:], " ")
	if got[0] != want[0] || gk != wk {
		return false
	}
	var g, w any
	if json.Unmarshal([]byte(gj), &g) != nil || json.Unmarshal([]byte(wj), &w) != nil {
		return gj == wj
	}
	return match(g, w)
}

// uuidV4 is the form of the event ids the plugin makes.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// match compares decoded JSON; a "*" string in want matches any value (for
// ids the host assigns), "$UUID" a random UUID (the event ids the plugin
// makes), and a string holding a JSON object a string holding the same
// document.
func match(got, want any) bool {
	switch w := want.(type) {
	case string:
		if w == "*" || got == w {
			return true
		}
		if w == "$UUID" {
			g, ok := got.(string)
			return ok && uuidV4.MatchString(g)
		}
		// A document sent as a JSON string (the state upstream) is
		// compared as the document.
		g, ok := got.(string)
		var gv, wv any
		return ok && strings.HasPrefix(w, "{") && json.Unmarshal([]byte(g), &gv) == nil && json.Unmarshal([]byte(w), &wv) == nil && match(gv, wv)
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, wv := range w {
			if gv, ok := g[k]; !ok || !match(gv, wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !match(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

func parseGolden(t *testing.T, path string) []step {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []step
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	expand := strings.NewReplacer("$X513", strings.Repeat("x", 513), "$K129", strings.Repeat("k", 129))
	for n := 1; sc.Scan(); n++ {
		line := expand.Replace(strings.TrimSpace(sc.Text()))
		if line == "" || line[0] == '#' {
			continue
		}
		switch line[0] {
		case '>':
			topic, payload, _ := strings.Cut(line[2:], " ")
			steps = append(steps, step{line: n, in: &sdk.Message{
				Route:   sdk.Route{Source: "bus", Group: "user", Operation: "response", Resource: base64.URLEncoding.EncodeToString([]byte(topic))},
				Content: []byte(payload),
			}})
		case '@':
			f := strings.SplitN(line[2:], " ", 4)
			if len(f) != 4 {
				t.Fatalf("%s:%d: want @ source operation resource content", path, n)
			}
			steps = append(steps, step{line: n, in: &sdk.Message{
				Route:   sdk.Route{Source: f[0], Group: "twin", Operation: f[1], Resource: f[2]},
				Content: []byte(f[3]),
			}})
		case '<', '^':
			if len(steps) == 0 {
				t.Fatalf("%s:%d: output before any input", path, n)
			}
			s := &steps[len(steps)-1]
			s.want = append(s.want, line)
		default:
			t.Fatalf("%s:%d: bad line %q", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}
