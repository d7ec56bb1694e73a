package runtime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoPod and ErrNoLog are the errors of Log for a pod the runtime does
// not run and a container with no log (yet).
var (
	ErrNoPod = errors.New("no such pod")
	ErrNoLog = errors.New("no log")
)

// Log opens the log of container (the pod's only one when empty) of pod
// ns/name: the current run's, or with previous the run before it. It
// reads the files CRI writes under <podDir>/<uid>/logs/<container>/<attempt>.log.
func (m *Module) Log(ns, name, container string, previous bool) (io.ReadCloser, error) {
	var uid string
	var containers, inits []string
	m.mu.Lock()
	for id, st := range m.pods {
		if st.namespace == ns && st.name == name {
			uid = id
			for _, cs := range st.status.ContainerStatuses {
				containers = append(containers, cs.Name)
			}
			for _, cs := range st.status.InitContainerStatuses {
				inits = append(inits, cs.Name)
			}
		}
	}
	m.mu.Unlock()
	if uid == "" {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, name, ErrNoPod)
	}
	if slices.Contains(inits, container) {
		// kubectl's: an init container's log is asked for by name.
		containers = inits
	} else if container == "" {
		if len(containers) != 1 {
			return nil, fmt.Errorf("pod %s/%s has containers %s: name one: %w", ns, name, strings.Join(containers, ", "), ErrNoLog)
		}
		container = containers[0]
	}
	if !slices.Contains(containers, container) {
		return nil, fmt.Errorf("pod %s/%s has no container %q: %w", ns, name, container, ErrNoPod)
	}
	dir := filepath.Join(m.podDir(uid), "logs", container)
	entries, _ := os.ReadDir(dir)
	var attempts []int
	for _, e := range entries {
		if n, err := strconv.Atoi(strings.TrimSuffix(e.Name(), ".log")); err == nil && strings.HasSuffix(e.Name(), ".log") {
			attempts = append(attempts, n)
		}
	}
	slices.Sort(attempts)
	pick := len(attempts) - 1
	if previous {
		pick--
	}
	if pick < 0 {
		which := "a log"
		if previous {
			which = "a previous run"
		}
		return nil, fmt.Errorf("container %s of pod %s/%s has no %s: %w", container, ns, name, which, ErrNoLog)
	}
	f, err := os.Open(filepath.Join(dir, strconv.Itoa(attempts[pick])+".log"))
	if err != nil {
		return nil, fmt.Errorf("container %s of pod %s/%s: %w", container, ns, name, err)
	}
	return logReader{r: NewLogReader(f), f: f}, nil
}

type logReader struct {
	r io.Reader
	f *os.File
}

func (l logReader) Read(p []byte) (int, error) { return l.r.Read(p) }
func (l logReader) Close() error               { return l.f.Close() }

// NewLogReader reads a CRI container log ("<time> <stream> <P|F>
// <content>" per line; P is a part of a longer line) as the text the
// container wrote, both streams interleaved in order. A line not in that
// form is passed through as it is.
func NewLogReader(r io.Reader) io.Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	return &criLog{sc: sc}
}

// criLog is NewLogReader's reader: one line decoded at a time.
type criLog struct {
	sc      *bufio.Scanner
	pending []byte
}

func (l *criLog) Read(p []byte) (int, error) {
	for len(l.pending) == 0 {
		if !l.sc.Scan() {
			if err := l.sc.Err(); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		l.pending = logContent(l.sc.Bytes())
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}

// logContent is one CRI log line's content, with its newline unless it
// is a partial line.
func logContent(line []byte) []byte {
	f := bytes.SplitN(line, []byte(" "), 4)
	if len(f) < 3 || (string(f[1]) != "stdout" && string(f[1]) != "stderr") || (string(f[2]) != "P" && string(f[2]) != "F") {
		return append(slices.Clone(line), '\n')
	}
	var content []byte
	if len(f) == 4 {
		content = slices.Clone(f[3])
	}
	if string(f[2]) == "F" {
		content = append(content, '\n')
	}
	return content
}
