package runtime

import (
	"io"
	"strings"
	"testing"
)

func TestLogReader(t *testing.T) {
	in := "2026-01-01T00:00:00.000000001Z stdout F hello\n" +
		"2026-01-01T00:00:00.000000002Z stderr P part one, \n" +
		"2026-01-01T00:00:00.000000003Z stderr F part two\n" +
		"2026-01-01T00:00:00.000000004Z stdout F \n" +
		"not a cri line\n"
	got, err := io.ReadAll(NewLogReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello\npart one, part two\n\nnot a cri line\n"; string(got) != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

// FuzzLogContent: any line gives content, never a panic, and a line that
// is not CRI's form comes back as it was.
func FuzzLogContent(f *testing.F) {
	f.Add([]byte("2026-01-01T00:00:00Z stdout F x"))
	f.Add([]byte("t stderr P"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, line []byte) {
		out := logContent(line)
		fields := strings.SplitN(string(line), " ", 4)
		if len(fields) < 3 && string(out) != string(line)+"\n" {
			t.Errorf("%q: %q", line, out)
		}
	})
}
