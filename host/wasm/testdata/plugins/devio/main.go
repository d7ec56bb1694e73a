// Command devio is a test plugin for the device I/O imports (abi/SPEC.md
// section 5.2), through the SDK. The operation picks the action, the
// content holds its space-separated arguments:
//
//	tcp ADDR TIMEOUT_MS        connect; replies "h N"
//	udp ADDR                   open a UDP socket; replies "h N"
//	serial PATH BAUD BITS PARITY STOP   open a serial line; replies "h N"
//	read H CAP TIMEOUT_MS      read from handle H; replies "data " + bytes, or "eof"
//	write H DATA...            write the rest of the content; replies "n N"
//	close H                    close handle H; replies "ok"
//	rawread H CAP              tcp_read on H directly, whatever H is
//	trap                       panic, with the handles still open
//
// A failure replies "code N" with the ABI code. Connections live in a
// global map by handle, across calls, as a mapper keeps them.
package main

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
)

// conn is what the SDK's TCPConn, UDPConn and SerialPort have in common.
type conn interface {
	io.ReadWriteCloser
	SetTimeout(time.Duration)
	Handle() int32
}

var conns = map[int32]conn{}

//go:wasmimport edgehost_v1 tcp_read
func rawTCPRead(h int32, out unsafe.Pointer, outCap, timeoutMS int32) int32

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func run(op string, args []string, content string) (string, error) {
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	var c conn
	var err error
	switch op {
	case "tcp":
		c, err = sdk.DialTCP(arg(0), time.Duration(atoi(arg(1)))*time.Millisecond)
	case "udp":
		c, err = sdk.DialUDP(arg(0))
	case "serial":
		c, err = sdk.OpenSerial(arg(0), sdk.SerialConfig{Baud: atoi(arg(1)), DataBits: atoi(arg(2)),
			Parity: sdk.Parity(atoi(arg(3))), StopBits: atoi(arg(4))})
	case "read":
		c := conns[int32(atoi(arg(0)))]
		c.SetTimeout(time.Duration(atoi(arg(2))) * time.Millisecond)
		buf := make([]byte, atoi(arg(1)))
		n, err := c.Read(buf)
		if err == io.EOF {
			return "eof", nil
		}
		return "data " + string(buf[:n]), err
	case "write":
		c := conns[int32(atoi(arg(0)))]
		_, data, _ := strings.Cut(content, " ")
		n, err := c.Write([]byte(data))
		return "n " + strconv.Itoa(n), err
	case "close":
		h := int32(atoi(arg(0)))
		err := conns[h].Close()
		return "ok", err
	case "rawread":
		buf := make([]byte, max(atoi(arg(1)), 1))
		n := rawTCPRead(int32(atoi(arg(0))), unsafe.Pointer(&buf[0]), int32(atoi(arg(1))), 100)
		if n < 0 {
			return "code " + strconv.Itoa(int(-n)), nil
		}
		return "data " + string(buf[:n]), nil
	case "trap":
		panic("devio: trap with handles open")
	default:
		return "", errors.New("unknown operation " + op)
	}
	if err != nil {
		return "", err
	}
	conns[c.Handle()] = c
	return "h " + strconv.Itoa(int(c.Handle())), nil
}

func init() {
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		content := string(m.Content)
		out, err := run(m.Route.Operation, strings.Fields(content), content)
		var code abi.Code
		switch {
		case err == nil:
			return m.Reply([]byte(out)), nil
		case errors.As(err, &code):
			return m.Reply([]byte("code " + strconv.Itoa(int(code)))), nil
		}
		return m.Reply([]byte("error " + err.Error())), nil
	})
}

func main() {}
