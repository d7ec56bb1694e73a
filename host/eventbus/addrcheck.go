package eventbus

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/portowner"
)

// CheckEmbeddedAddress fails when the embedded broker of cfg could not
// listen on its address, so that the daemon stops at start with the reason
// instead of retrying the eventbus for ever. The usual cause on a KubeEdge
// node is the mosquitto already on 1883: the error names the process
// holding the port when it can be found and suggests mode: external.
func CheckEmbeddedAddress(cfg config.EventBus) error {
	if !cfg.Enable || cfg.Mode == "external" {
		return nil
	}
	l, err := net.Listen("tcp", cfg.Embedded.Address)
	if err != nil {
		return listenError(cfg.Embedded.Address, err)
	}
	return l.Close()
}

// listenError explains why the embedded broker cannot listen on addr.
func listenError(addr string, err error) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("eventbus: the embedded broker cannot listen on %s (modules.eventbus.embedded.address): %w", addr, err)
	}
	holder := "another process"
	if _, p, splitErr := net.SplitHostPort(addr); splitErr == nil {
		if port, convErr := strconv.Atoi(p); convErr == nil {
			if proc, ok := portowner.Find(port); ok {
				holder = proc.String()
			} else {
				holder = "another process (not found in /proc: run as root or see `ss -ltnp`)"
			}
		}
	}
	return fmt.Errorf("eventbus: the embedded broker's address %s (modules.eventbus.embedded.address) is in use by %s; "+
		"to use that broker instead, set modules.eventbus.mode: external and modules.eventbus.external.url: tcp://%s; "+
		"else stop it or give the embedded broker a free address", addr, holder, addr)
}
