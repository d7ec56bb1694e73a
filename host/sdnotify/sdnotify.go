// Package sdnotify tells systemd the daemon's state over $NOTIFY_SOCKET
// (sd_notify): READY=1 once the daemon is ready as /readyz says, STATUS=
// with why it is not while it is not, WATCHDOG=1 at half the watchdog
// interval, STOPPING=1 at shutdown. Without $NOTIFY_SOCKET (not run by
// systemd as Type=notify) it does nothing.
package sdnotify

import (
	"context"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"
)

// Readiness reports whether the daemon is ready and, when not, why.
type Readiness func() (ready bool, notReady []string)

// pollInterval is how often Run asks readiness until the daemon is ready.
const pollInterval = 500 * time.Millisecond

// Run notifies systemd until ctx ends: READY=1 the first time ready says
// so (STATUS= naming what is missing before), and WATCHDOG=1 every half of
// $WATCHDOG_USEC when systemd set it.
func Run(ctx context.Context, ready Readiness, log hclog.Logger) {
	watchdog, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings unusable; not pinging it", "error", err)
	}
	var ping <-chan time.Time
	if watchdog > 0 {
		t := time.NewTicker(watchdog / 2)
		defer t.Stop()
		ping = t.C
		notify(log, daemon.SdNotifyWatchdog)
	}
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	lastStatus := ""
	for isReady := false; ; {
		if !isReady {
			ok, why := ready()
			switch status := "not ready: " + strings.Join(why, "; "); {
			case ok:
				isReady = true
				notify(log, daemon.SdNotifyReady+"\nSTATUS=ready")
				poll.Stop()
			case status != lastStatus:
				lastStatus = status
				notify(log, "STATUS="+status)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ping:
			notify(log, daemon.SdNotifyWatchdog)
		case <-poll.C:
		}
	}
}

// Stopping tells systemd the daemon is shutting down.
func Stopping(log hclog.Logger) { notify(log, daemon.SdNotifyStopping) }

func notify(log hclog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Debug("sd_notify failed", "state", state, "error", err)
	}
}
