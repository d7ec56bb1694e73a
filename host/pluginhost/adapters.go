package pluginhost

import (
	"context"
	"errors"
	"path"
	"strings"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/wasm"
)

// match reports whether value matches pattern: empty, "*" or "#" match
// anything (abi/SPEC.md section 4.1);
// otherwise path.Match rules, where "*" does not cross "/", and a trailing
// "/#" matches any number of further levels (as in MQTT).
func match(pattern, value string) bool {
	if pattern == "" || pattern == "*" || pattern == "#" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/#"); ok {
		if value == prefix {
			return true
		}
		levels := strings.Count(prefix, "/") + 1
		parts := strings.SplitN(value, "/", levels+1)
		if len(parts) <= levels {
			return false
		}
		return match(prefix, strings.Join(parts[:levels], "/"))
	}
	ok, err := path.Match(pattern, value)
	return ok && err == nil
}

// busHost is the bus as plugins see it: they address groups, as KubeEdge
// modules do, and every message they send carries their name as source.
type busHost struct{ bus *bus.Bus }

func (h busHost) Send(ctx context.Context, plugin string, m *abi.Message) error {
	if m.Route.Group == "" {
		return errors.Join(errors.New("message has no route group"), abi.InvalidArgument)
	}
	m.Route.Source = plugin
	return h.bus.SendToGroup(ctx, m.Route.Group, *m)
}

func (h busHost) Request(ctx context.Context, plugin string, m *abi.Message) (abi.Message, error) {
	if m.Route.Group == "" {
		return abi.Message{}, errors.Join(errors.New("message has no route group"), abi.InvalidArgument)
	}
	m.Route.Source = plugin
	return h.bus.RequestGroup(ctx, m.Route.Group, *m)
}

// storeKV adapts a plugin's namespace in the store to the runtime's KV.
type storeKV struct{ kv *store.KV }

func (s storeKV) Get(key string) ([]byte, bool, error) { return s.kv.Get(key) }
func (s storeKV) List(prefix string) ([]string, error) { return s.kv.List(prefix) }
func (s storeKV) Apply(ops []wasm.KVOp) error {
	conv := make([]store.KVOp, len(ops))
	for i, op := range ops {
		conv[i] = store.KVOp(op)
	}
	return s.kv.Apply(conv)
}
