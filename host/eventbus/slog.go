package eventbus

import (
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogAdapter sends mochi-mqtt's slog records to the module's hclog logger,
// so the broker logs where the rest of the daemon does. mochi warns about
// each misbehaving or vanished client; those go to debug (the eventbus
// logs and counts the rejections that matter itself), its errors to warn.
// The one drop mochi only logs, a client's in-flight quota reached, goes to
// quota with the client's id instead.
type slogAdapter struct {
	log   hclog.Logger
	attrs []any
	quota func(client string)
}

// Enabled implements slog.Handler.
func (a *slogAdapter) Enabled(_ context.Context, l slog.Level) bool {
	return a.log.IsDebug() || l >= slog.LevelWarn && a.quota != nil || l >= slog.LevelError
}

// Handle implements slog.Handler.
func (a *slogAdapter) Handle(_ context.Context, r slog.Record) error {
	if r.Message == mochiQuotaReached && a.quota != nil {
		client := ""
		r.Attrs(func(at slog.Attr) bool {
			if at.Key == "client" {
				client = at.Value.String()
				return false
			}
			return true
		})
		a.quota(client)
		return nil
	}
	if r.Level < slog.LevelError && !a.log.IsDebug() {
		return nil
	}
	args := append([]any{}, a.attrs...)
	r.Attrs(func(at slog.Attr) bool {
		args = append(args, at.Key, at.Value.Any())
		return true
	})
	if r.Level >= slog.LevelError {
		a.log.Warn(r.Message, args...)
	} else {
		a.log.Debug(r.Message, args...)
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (a *slogAdapter) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := &slogAdapter{log: a.log, attrs: append([]any{}, a.attrs...), quota: a.quota}
	for _, at := range attrs {
		n.attrs = append(n.attrs, at.Key, at.Value.Any())
	}
	return n
}

// WithGroup implements slog.Handler; groups name a sub-logger.
func (a *slogAdapter) WithGroup(name string) slog.Handler {
	return &slogAdapter{log: a.log.Named(name), attrs: a.attrs, quota: a.quota}
}
