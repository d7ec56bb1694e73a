//go:build linux

package wasm

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/plugins"
	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the master, for the test to play
// the device, and the path of the slave, for the plugin to open.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("pty number: %v", err)
	}
	master := os.NewFile(uintptr(fd), "ptmx")
	t.Cleanup(func() { master.Close() })
	return master, fmt.Sprintf("/dev/pts/%d", n)
}

// readFull reads n bytes from the pty master.
func readFull(t *testing.T, f *os.File, n int) string {
	t.Helper()
	buf := make([]byte, 0, n)
	for len(buf) < n {
		b := make([]byte, n-len(buf))
		k, err := f.Read(b)
		if err != nil {
			t.Fatalf("read the pty master: %v", err)
		}
		buf = append(buf, b[:k]...)
	}
	return string(buf)
}

// TestSerialDeviceIO: a plugin opens the slave of a real pty in raw mode
// with the framing it asks for, writes to the "device" and reads its
// answer; a silent line times out; a hang-up ends the stream.
func TestSerialDeviceIO(t *testing.T) {
	master, slave := openPTY(t)
	pol := plugins.NewPolicy(plugins.Capabilities{Serial: []string{"/dev/pts/*", "/dev/null"}}, nil)
	p := load(t, devioPlugin, PluginConfig{Grants: pol})
	h := openHandle(t, p, "serial", slave+" 19200 8 2 2")
	// The line's settings are the pty's, which the master reads too. Linux's
	// pty driver resets CSIZE and PARENB to 8 bits without parity whatever
	// is asked, so data bits and parity can only be seen whole on a real
	// UART; here the parity check flag (INPCK) shows the request.
	tio, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Cflag&unix.CSTOPB == 0 || tio.Cflag&unix.CBAUD != unix.B19200 || tio.Iflag&unix.INPCK == 0 ||
		tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || tio.Iflag&(unix.ICRNL|unix.IXON) != 0 || tio.Oflag&unix.OPOST != 0 {
		t.Errorf("termios after serial_open: iflag %#o oflag %#o cflag %#o lflag %#o, want 19200, 2 stop bits, parity checked, raw",
			tio.Iflag, tio.Oflag, tio.Cflag, tio.Lflag)
	}
	// Raw mode: bytes pass unchanged, a newline is not turned into CR LF.
	if r := devCall(t, p, "write", fmt.Sprintf("%d :0103\n", h)); r != "n 6" {
		t.Fatalf("write: %q", r)
	}
	if got := readFull(t, master, 6); got != ":0103\n" {
		t.Fatalf("the device read %q", got)
	}
	if _, err := master.Write([]byte("ok\r")); err != nil {
		t.Fatal(err)
	}
	var got string
	for len(got) < 3 {
		r := devCall(t, p, "read", fmt.Sprintf("%d 16 1000", h))
		data, ok := strings.CutPrefix(r, "data ")
		if !ok {
			t.Fatalf("read: %q", r)
		}
		got += data
	}
	if got != "ok\r" {
		t.Fatalf("the plugin read %q", got)
	}
	if r := devCall(t, p, "read", fmt.Sprintf("%d 16 100", h)); r != "code 6" {
		t.Fatalf("read of a silent line: %q, want code 6", r)
	}
	for _, c := range []struct{ content, want string }{
		{"/dev/pts/../ptmx 9600 8 0 1", "code 1"}, // not a clean path
		{slave + " 9601 8 0 1", "code 1"},         // no such baud rate
		{slave + " 9600 9 0 1", "code 1"},
		{"/dev/null 9600 8 0 1", "code 1"},       // not a terminal
		{"/dev/pts/99999 9600 8 0 1", "code 14"}, // absent
		{"/dev/ttyS0 9600 8 0 1", "code 5"},
	} {
		if r := devCall(t, p, "serial", c.content); r != c.want {
			t.Errorf("serial %s: %q, want %q", c.content, r, c.want)
		}
	}
	// The device hangs up.
	master.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := devCall(t, p, "read", fmt.Sprintf("%d 16 100", h))
		if r == "eof" {
			break
		}
		if r != "code 6" || time.Now().After(deadline) {
			t.Fatalf("read after hang-up: %q, want eof", r)
		}
	}
}
