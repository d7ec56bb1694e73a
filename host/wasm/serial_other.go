//go:build !linux

package wasm

import (
	"os"

	"github.com/edgehost/edgehost/abi"
)

// openSerial: serial lines are implemented for Linux only (termios
// differs between systems); elsewhere serial_open is unavailable.
func openSerial(path string, line serialLine) (*os.File, abi.Code) {
	return nil, abi.Unavailable
}
