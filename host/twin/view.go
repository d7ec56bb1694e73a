package twin

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/store"
)

// The twin plugin keeps each device as one KV value, a JSON record under
// devicePrefix + id (docs/twin.md); the admin API reads them from the
// store, so an operator sees the twins even while the plugin is busy or
// faulted. A read sees what the plugin has committed.

// devicePrefix prefixes the KV key of each device in the twin plugin's
// namespace.
const devicePrefix = "device/"

// storedDevice is the part of the plugin's device record the view shows.
type storedDevice struct {
	ID         string                 `json:"id"`
	Name       string                 `json:"name"`
	State      string                 `json:"state"`
	LastOnline string                 `json:"last_online"`
	Twin       map[string]*storedTwin `json:"twin"`
}

// storedTwin is one twin property of the record: KubeEdge's MsgTwin.
type storedTwin struct {
	Expected *storedValue `json:"expected"`
	Actual   *storedValue `json:"actual"`
	Metadata *struct {
		Type string `json:"type"`
	} `json:"metadata"`
	ExpectedVersion *api.TwinVersion `json:"expected_version"`
	ActualVersion   *api.TwinVersion `json:"actual_version"`
}

// storedValue is one side of a property, with the unix ms it was set.
type storedValue struct {
	Value    *string `json:"value"`
	Metadata *struct {
		Timestamp int64 `json:"timestamp"`
	} `json:"metadata"`
}

// typeDeleted is the type of a property deleted softly, kept for its
// versions; the view leaves it out.
const typeDeleted = "deleted"

// errNoStore is the error of a view of a module made without a store.
var errNoStore = errors.New("twin: no store to read the twins from")

// Twins returns every device's twin as the twin plugin has stored it, by
// id.
func (m *Module) Twins() ([]api.DeviceTwin, error) {
	if m.cfg.Store == nil {
		return nil, errNoStore
	}
	kv := m.cfg.Store.PluginKV(m.cfg.Plugin)
	keys, err := kv.List(devicePrefix)
	if err != nil {
		return nil, fmt.Errorf("read twins: %w", err)
	}
	out := make([]api.DeviceTwin, 0, len(keys))
	for _, k := range keys {
		t, ok, err := readTwin(kv, strings.TrimPrefix(k, devicePrefix))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// Twin returns one device's twin; api.ErrNotFound when the plugin has no
// such device.
func (m *Module) Twin(id string) (api.DeviceTwin, error) {
	if m.cfg.Store == nil {
		return api.DeviceTwin{}, errNoStore
	}
	t, ok, err := readTwin(m.cfg.Store.PluginKV(m.cfg.Plugin), id)
	if err == nil && !ok {
		err = fmt.Errorf("twin of device %q: %w", id, api.ErrNotFound)
	}
	return t, err
}

// readTwin reads and describes the device id's record.
func readTwin(kv *store.KV, id string) (api.DeviceTwin, bool, error) {
	b, ok, err := kv.Get(devicePrefix + id)
	if err != nil || !ok {
		return api.DeviceTwin{}, false, err
	}
	var d storedDevice
	if err := json.Unmarshal(b, &d); err != nil {
		return api.DeviceTwin{}, false, fmt.Errorf("twin of device %q: stored record does not decode: %w", id, err)
	}
	t := api.DeviceTwin{ID: id, Name: d.Name, State: d.State, LastOnline: d.LastOnline, Properties: []api.TwinProperty{}}
	for name, p := range d.Twin {
		if p == nil || (p.Metadata != nil && p.Metadata.Type == typeDeleted) {
			continue
		}
		prop := api.TwinProperty{Name: name, DesiredVersion: p.ExpectedVersion, ReportedVersion: p.ActualVersion}
		if p.Metadata != nil {
			prop.Type = p.Metadata.Type
		}
		prop.Desired, prop.DesiredAt = p.Expected.value()
		prop.Reported, prop.ReportedAt = p.Actual.value()
		// KubeEdge's delta: a non-empty expected value the actual one
		// differs from.
		prop.InSync = prop.Desired == nil || *prop.Desired == "" || (prop.Reported != nil && *prop.Reported == *prop.Desired)
		if !prop.InSync {
			t.OutOfSync++
		}
		t.Properties = append(t.Properties, prop)
	}
	slices.SortFunc(t.Properties, func(a, b api.TwinProperty) int { return strings.Compare(a.Name, b.Name) })
	return t, true, nil
}

// value is the side's value and the time it was set; nil and zero when
// the side has no value.
func (v *storedValue) value() (*string, time.Time) {
	if v == nil || v.Value == nil {
		return nil, time.Time{}
	}
	var at time.Time
	if v.Metadata != nil && v.Metadata.Timestamp > 0 {
		at = time.UnixMilli(v.Metadata.Timestamp).UTC()
	}
	return v.Value, at
}
