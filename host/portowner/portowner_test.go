package portowner

import (
	"net"
	"os"
	"strings"
	"testing"
)

func TestFindsThisProcess(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p, ok := Find(port)
	if !ok || p.PID != os.Getpid() {
		t.Fatalf("Find(%d) = %+v, %v; want this process (pid %d)", port, p, ok, os.Getpid())
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	if p.Name != strings.TrimSpace(string(comm)) {
		t.Errorf("name %q, want %q", p.Name, comm)
	}
}

func TestNothingListening(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if p, ok := Find(port); ok {
		t.Errorf("Find(%d) on a closed port = %+v", port, p)
	}
}
