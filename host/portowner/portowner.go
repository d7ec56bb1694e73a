// Package portowner finds the process listening on a local TCP port, from
// /proc/net/tcp{,6} (the listening socket's inode) and /proc/*/fd (the
// process holding that inode), as `ss -ltnp` does. Other users' processes
// are found only with the rights to read their fds (root).
package portowner

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is a process holding a listening socket.
type Process struct {
	PID  int
	Name string // /proc/<pid>/comm
}

// String is "name (pid N)".
func (p Process) String() string { return fmt.Sprintf("%s (pid %d)", p.Name, p.PID) }

// tcpListen is the state of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// Find returns the process listening on TCP port, if it can be found.
func Find(port int) (Process, bool) { return find("/proc", port) }

func find(proc string, port int) (Process, bool) {
	inodes := map[string]bool{}
	for _, table := range []string{"net/tcp", "net/tcp6"} {
		for _, ino := range listeningInodes(filepath.Join(proc, table), port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return Process{}, false
	}
	dirs, err := os.ReadDir(proc)
	if err != nil {
		return Process{}, false
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(proc, d.Name(), "fd"))
		if err != nil {
			continue // not ours to read, or gone
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(proc, d.Name(), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				comm, _ := os.ReadFile(filepath.Join(proc, d.Name(), "comm"))
				return Process{PID: pid, Name: strings.TrimSpace(string(comm))}, true
			}
		}
	}
	return Process{}, false
}

// listeningInodes returns the inodes of the sockets listening on port in
// a /proc/net/tcp table: "sl local_address rem_address st ... inode",
// addresses as hex IP:port.
func listeningInodes(table string, port int) []string {
	f, err := os.Open(table)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); !ok || err != nil || int(p) != port {
			continue
		}
		out = append(out, fields[9])
	}
	return out
}
