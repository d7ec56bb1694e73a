//go:build linux

package wasm

import (
	"os"

	"github.com/edgehost/edgehost/abi"
	"golang.org/x/sys/unix"
)

// serialSpeeds maps serial_open's baud rates to termios speeds.
var serialSpeeds = map[int32]uint32{
	50: unix.B50, 75: unix.B75, 110: unix.B110, 134: unix.B134, 150: unix.B150, 200: unix.B200,
	300: unix.B300, 600: unix.B600, 1200: unix.B1200, 1800: unix.B1800, 2400: unix.B2400,
	4800: unix.B4800, 9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600,
	115200: unix.B115200, 230400: unix.B230400, 460800: unix.B460800, 500000: unix.B500000,
	576000: unix.B576000, 921600: unix.B921600, 1000000: unix.B1000000,
}

// openSerial opens the terminal device at path for exclusive use in raw
// mode with line's settings. The descriptor stays non-blocking, so the
// returned file waits in Go's poller and honours deadlines.
func openSerial(path string, line serialLine) (*os.File, abi.Code) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, abi.Unreachable // absent, busy or not ours
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		unix.Close(fd)
		return nil, abi.InvalidArgument
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		unix.Close(fd) // not a terminal
		return nil, abi.InvalidArgument
	}
	// Raw mode, as cfmakeraw, plus the line's framing.
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL |
		unix.IXON | unix.IXOFF | unix.IXANY | unix.INPCK
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
	t.Cflag |= unix.CREAD | unix.CLOCAL | [...]uint32{5: unix.CS5, 6: unix.CS6, 7: unix.CS7, 8: unix.CS8}[line.dataBits]
	switch line.parity {
	case abi.ParityOdd:
		t.Cflag |= unix.PARENB | unix.PARODD
		t.Iflag |= unix.INPCK
	case abi.ParityEven:
		t.Cflag |= unix.PARENB
		t.Iflag |= unix.INPCK
	}
	if line.stopBits == 2 {
		t.Cflag |= unix.CSTOPB
	}
	speed := serialSpeeds[line.baud]
	t.Cflag |= speed
	t.Ispeed, t.Ospeed = speed, speed
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		unix.Close(fd)
		return nil, abi.InvalidArgument
	}
	// Keep a second opener (another instance) off the line; root may
	// still open it.
	_ = unix.IoctlSetInt(fd, unix.TIOCEXCL, 0)
	f := os.NewFile(uintptr(fd), path)
	if err := f.SetReadDeadline(noDeadline); err != nil {
		// Not in the poller: a read could not be bounded.
		f.Close()
		return nil, abi.Unavailable
	}
	return f, abi.OK
}
