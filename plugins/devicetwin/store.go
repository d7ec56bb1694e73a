package main

import (
	"errors"
	"strings"

	"github.com/edgehost/edgehost/sdk"
)

// Every device is one KV value, so a twin update reads and writes one key
// and the writes of one message commit together (SPEC §5). The host's
// adapter (host/twin) hands one device's messages to the plugin one at a
// time, so no two calls read-modify-write the same key at once.

// devicePrefix prefixes the KV key of each device: devicePrefix + id.
const devicePrefix = "device/"

// Where a device was declared; a full sync replaces the devices of its own
// origin only.
const (
	originCloud = "cloud"
	originLocal = "local"
)

// record is a device as stored: the KubeEdge device and its origin.
type record struct {
	Device
	Origin string `json:"origin,omitempty"`
}

// errStore marks a failure of the host's KV store.
var errStore = errors.New("device store")

// loadDevice reads a device; ok is false when it is not registered.
func loadDevice(id string) (*record, bool, error) {
	b, ok, err := sdk.KVGet(devicePrefix + id)
	if err != nil {
		return nil, false, errors.Join(errStore, err)
	}
	if !ok {
		return nil, false, nil
	}
	r := new(record)
	if err := r.decodeJSON(b); err != nil {
		return nil, false, errors.Join(errStore, errors.New("device "+id+": stored record is corrupt"), err)
	}
	if r.Twin == nil {
		r.Twin = map[string]*MsgTwin{}
	}
	return r, true, nil
}

// saveDevice writes a device; the write commits when the call succeeds.
func saveDevice(r *record) error {
	b := r.appendJSON(doc[:0])
	doc = b[:0]
	if err := sdk.KVPut(devicePrefix+r.ID, b); err != nil {
		return errors.Join(errStore, err)
	}
	return nil
}

// deleteDevice removes a device and its twin.
func deleteDevice(id string) error {
	if err := sdk.KVDelete(devicePrefix + id); err != nil {
		return errors.Join(errStore, err)
	}
	return nil
}

// listDevices returns every registered device, ordered by id.
func listDevices() ([]*record, error) {
	keys, err := sdk.KVList(devicePrefix)
	if err != nil {
		return nil, errors.Join(errStore, err)
	}
	out := make([]*record, 0, len(keys))
	for _, k := range keys {
		r, ok, err := loadDevice(strings.TrimPrefix(k, devicePrefix))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}
