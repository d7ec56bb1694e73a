package meta

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/store"
)

// The captured pod insert gets the captured edgecore ACK: op response,
// content "OK", parent the insert, the insert's source, group and
// resource, no resource version.
func TestAckMatchesCapture(t *testing.T) {
	r := newRig(t, Config{})
	insert := toMessage(readFrame(t, "pod-insert.json"))
	r.send(insert)
	ack := next(t, r.cloud)
	matchGolden(t, ack, "pod-ack.json")
	o, found := r.stored("default/pod/nginx")
	if !found || string(o.Content) != string(insert.Content) || o.ResourceVersion != "1" {
		t.Errorf("stored %+v %v, want the pod at resource version 1", o, found)
	}
	eventually(t, "the ACK counted", func() bool { return r.meta.Stats().Acks == 1 })
	if s := r.meta.Stats(); s.Stored != 1 {
		t.Errorf("stats = %+v", s)
	}
}

// Every kind the cloud sends is on disk when its ACK arrives: the store
// file, copied the moment the ACK is received, holds it, and so does the
// file after the module is stopped abruptly.
func TestPersistBeforeAck(t *testing.T) {
	r := newRig(t, Config{})
	kinds := []abi.Message{
		obj("edgecontroller", abi.OpInsert, "default/pod/web", "11", `{"kind":"Pod","metadata":{"name":"web","uid":"u1","resourceVersion":"11"}}`),
		obj("edgecontroller", abi.OpInsert, "default/configmap/cm", "12", `{"kind":"ConfigMap","data":{"a":"b"}}`),
		obj("edgecontroller", abi.OpInsert, "default/secret/s", "13", `{"kind":"Secret","data":{"k":"dg=="}}`),
		obj("edgecontroller", abi.OpUpdate, "null/node/edge-1", "14", `{"kind":"Node","metadata":{"name":"edge-1"}}`),
		obj("dynamiccontroller", abi.OpInsert, "default/service/api", "15", `{"kind":"Service"}`),
		obj("dynamiccontroller", abi.OpInsert, "default/endpoints/api", "16", `{"kind":"Endpoints"}`),
		obj("devicecontroller", abi.OpInsert, "default/device/thermo", "17", `{"kind":"Device"}`),
		obj("devicecontroller", abi.OpInsert, "default/devicemodel/thermo-model", "18", `{"kind":"DeviceModel"}`),
		obj("dynamiccontroller", abi.OpInsert, "null/widget/anything", "", `{"kind":"Widget"}`),
	}
	for i, m := range kinds {
		r.send(m)
		r.wantAck(m)
		copyPath := filepath.Join(t.TempDir(), "copy.db")
		copyFile(t, r.path, copyPath)
		if !storedIn(t, copyPath, m.Route.Resource) {
			t.Fatalf("kind %d: %s was acknowledged before it was in the store file", i, m.Route.Resource)
		}
	}
	r.cancel() // abrupt: no drain, no goodbye
	r.stop()
	for _, m := range kinds {
		if !storedIn(t, r.path, m.Route.Resource) {
			t.Errorf("%s acknowledged but missing after the module stopped", m.Route.Resource)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// storedIn opens the store file at path and reports whether it holds key.
func storedIn(t *testing.T, path, key string) bool {
	t.Helper()
	st, err := store.Open(path, nil)
	if err != nil {
		t.Fatalf("reopen %s: %v", path, err)
	}
	defer st.Close()
	_, found, err := newObjects(st).get(key)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// A write the store fails is not acknowledged (the cloud sends it again)
// and is counted; what was stored before is still in the file.
func TestStoreFailureIsNotAcked(t *testing.T) {
	r := newRig(t, Config{})
	first := obj("edgecontroller", abi.OpInsert, "default/configmap/first", "1", `{"data":{}}`)
	r.send(first)
	r.wantAck(first)
	if err := r.store.Close(); err != nil {
		t.Fatal(err)
	}
	second := obj("edgecontroller", abi.OpInsert, "default/configmap/second", "2", `{"data":{}}`)
	r.send(second)
	eventually(t, "the store error counted", func() bool { return r.meta.Stats().StoreErrors == 1 })
	none(t, r.cloud)
	r.stop()
	if !storedIn(t, r.path, "default/configmap/first") {
		t.Error("an object stored before the failure is gone")
	}
	if storedIn(t, r.path, "default/configmap/second") {
		t.Error("the failed write is in the file")
	}
}
