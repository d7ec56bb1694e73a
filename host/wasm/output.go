package wasm

import (
	"bytes"

	"github.com/hashicorp/go-hclog"
)

// maxLine is the longest stdout/stderr line logged whole; longer ones are
// logged in pieces.
const maxLine = 4096

// lineWriter turns a guest's WASI stdout or stderr into log lines on the
// plugin's logger. It is written to only by the goroutine running a call
// into its instance.
type lineWriter struct {
	inst   *instance
	stream string
	buf    []byte
}

// Write implements io.Writer.
func (w *lineWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[:copy(w.buf, w.buf[i+1:])]
	}
	for len(w.buf) >= maxLine {
		w.emit(w.buf[:maxLine])
		w.buf = w.buf[:copy(w.buf, w.buf[maxLine:])]
	}
	return len(b), nil
}

// flush logs a final unterminated line.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) emit(line []byte) {
	level := hclog.Info
	if w.stream == "stderr" {
		level = hclog.Warn
		// Go's and Rust's runtimes say so before they abort.
		if bytes.Contains(line, []byte("out of memory")) || bytes.Contains(line, []byte("memory allocation of")) {
			w.inst.oom = true
		}
	}
	w.inst.p.logger.Log(level, string(line), "stream", w.stream)
}
