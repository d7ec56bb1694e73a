package dmi

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host/bus"
	pb "github.com/edgehost/edgehost/host/dmi/v1beta1"
	"google.golang.org/grpc/codes"
)

// catalogOf builds a catalog from YAML documents as LoadDir does.
func catalogOf(t *testing.T, docs ...string) *Catalog {
	t.Helper()
	objs, err := parseObjects([]byte(strings.Join(docs, "\n---\n")))
	if err != nil {
		t.Fatal(err)
	}
	var devices, models []located
	for _, o := range objs {
		if o.Kind == "Device" {
			devices = append(devices, located{"test.yaml", o})
		} else {
			models = append(models, located{"test.yaml", o})
		}
	}
	c, err := build(devices, models)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func model(name string) string {
	return `apiVersion: devices.kubeedge.io/v1beta1
kind: DeviceModel
metadata: {name: ` + name + `}
spec:
  protocol: modbus-tcp
  properties: [{name: temp, type: INT}]`
}

func device(name, modelName, protocol, desired string) string {
	return `apiVersion: devices.kubeedge.io/v1beta1
kind: Device
metadata: {name: ` + name + `}
spec:
  deviceModelRef: {name: ` + modelName + `}
  protocol: {protocolName: ` + protocol + `}
  properties: [{name: temp, desired: {value: "` + desired + `"}}]`
}

// startDMI runs the DMI module alone on a bus and store, fed by source.
func startDMI(t *testing.T, b *bus.Bus, dir string, source Source, cfg Config) (string, func()) {
	t.Helper()
	cfg.Socket = filepath.Join(dir, "dmi.sock")
	st := openStore(t, dir)
	mod := New(cfg, b, st, source, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- mod.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("dmi ended before ready: %v", err)
	}
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dmi: %v", err)
		}
		st.Close()
	}
	return cfg.Socket, stop
}

// wantCalls takes the mapper's next calls and fails unless they are want
// ("Method id"), in order.
func wantCalls(t *testing.T, m *testMapper, want ...string) []mapperCall {
	t.Helper()
	var got []mapperCall
	for _, w := range want {
		c := m.next(t)
		got = append(got, c)
		if c.method+" "+c.id != w {
			t.Fatalf("mapper call %d = %s %s, want %s", len(got), c.method, c.id, w)
		}
	}
	return got
}

// TestDeviceChangesReachTheMapper drives the catalog through additions,
// changes and removals and checks the calls a registered mapper gets on
// its own socket: models before the devices that use them, only real
// changes, removals last; a mapper that fails is retried; and a mapper
// registered without data, and kept across a restart, still gets changes.
func TestDeviceChangesReachTheMapper(t *testing.T) {
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	dir := shortDir(t)
	source := make(feed)
	sock, stop := startDMI(t, b, dir, source, Config{CallTimeout: 2 * time.Second})
	source <- catalogOf(t, model("m1"), device("thermo-0", "m1", "modbus-tcp", "20"), device("other", "", "opcua", "1"))
	mapper := startMapper(t)
	dmi := dial(t, sock)
	ctx := context.Background()

	resp, err := dmi.MapperRegister(ctx, &pb.MapperRegisterRequest{WithData: false, Mapper: &pb.MapperInfo{
		Name: "modbus-mapper", Protocol: "modbus-tcp", Address: []byte(mapper.sock)}})
	if err != nil {
		t.Fatalf("MapperRegister: %v", err)
	}
	if len(resp.GetDeviceList())+len(resp.GetModelList()) != 0 {
		t.Errorf("a registration without data got %v", resp)
	}

	source <- catalogOf(t, model("m1"), model("m2"),
		device("thermo-0", "m1", "modbus-tcp", "25"), device("thermo-1", "m2", "modbus-tcp", "5"), device("other", "", "opcua", "2"))
	calls := wantCalls(t, mapper, "CreateDeviceModel default/m2", "UpdateDevice default/thermo-0", "RegisterDevice default/thermo-1")
	if got := calls[1].device.GetSpec().GetProperties()[0].GetDesired().GetValue(); got != "25" {
		t.Errorf("UpdateDevice desired = %q, want 25", got)
	}

	// thermo-1 moves to another protocol and m2 is no longer used; m1
	// changes; thermo-0 does not.
	m1 := strings.Replace(model("m1"), "type: INT", "type: FLOAT", 1)
	source <- catalogOf(t, m1, model("m2"),
		device("thermo-0", "m1", "modbus-tcp", "25"), device("thermo-1", "m2", "opcua", "5"), device("other", "", "opcua", "2"))
	calls = wantCalls(t, mapper, "UpdateDeviceModel default/m1", "RemoveDevice default/thermo-1", "RemoveDeviceModel default/m2")
	if got := calls[0].model.GetSpec().GetProperties()[0].GetType(); got != "FLOAT" {
		t.Errorf("UpdateDeviceModel type = %q, want FLOAT", got)
	}

	// A mapper that refuses is retried until it takes the change.
	mapper.mu.Lock()
	mapper.fail = true
	mapper.mu.Unlock()
	source <- catalogOf(t, m1, device("thermo-0", "m1", "modbus-tcp", "30"))
	select {
	case <-mapper.refused:
	case <-time.After(waitFor):
		t.Fatal("the change was never tried")
	}
	mapper.mu.Lock()
	mapper.fail = false
	mapper.mu.Unlock()
	wantCalls(t, mapper, "UpdateDevice default/thermo-0")

	// After a restart the stored mapper gets changes without registering
	// again; the first catalog is what it is taken to hold.
	stop()
	source2 := make(feed)
	_, stop2 := startDMI(t, b, dir, source2, Config{CallTimeout: 2 * time.Second})
	defer stop2()
	source2 <- catalogOf(t, m1, device("thermo-0", "m1", "modbus-tcp", "30"))
	source2 <- catalogOf(t, m1, device("thermo-0", "m1", "modbus-tcp", "31"))
	calls = wantCalls(t, mapper, "UpdateDevice default/thermo-0")
	if got := calls[0].device.GetSpec().GetProperties()[0].GetDesired().GetValue(); got != "31" {
		t.Errorf("after restart desired = %q, want 31", got)
	}
	select {
	case c := <-mapper.calls:
		t.Errorf("unexpected call %s %s", c.method, c.id)
	default:
	}
}

// TestRateLimit checks requests beyond the configured burst are refused
// with edgecore's "too many requests" and the config key to raise. The
// rate is so low that no token comes back during the test.
func TestRateLimit(t *testing.T) {
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	sock, stop := startDMI(t, b, shortDir(t), make(feed), Config{Rate: 0.0001, Burst: 2})
	defer stop()
	dmi := dial(t, sock)
	req := &pb.ReportDeviceStatesRequest{DeviceName: "thermo-0", State: "online"}
	for range 2 {
		// No twin module runs: admitted requests fail as unavailable.
		_, err := dmi.ReportDeviceStates(context.Background(), req)
		wantCode(t, "request within the burst", err, codes.Unavailable)
	}
	_, err := dmi.ReportDeviceStates(context.Background(), req)
	wantCode(t, "request over the burst", err, codes.ResourceExhausted)
	if err == nil || !strings.Contains(err.Error(), "too many requests") || !strings.Contains(err.Error(), "dmiRate") {
		t.Errorf("over the limit: %v, want too many requests naming dmiRate", err)
	}
}

// TestSocketInUse checks a second server does not take a live socket.
func TestSocketInUse(t *testing.T) {
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	dir := shortDir(t)
	sock, stop := startDMI(t, b, dir, make(feed), Config{})
	defer stop()
	st := openStore(t, t.TempDir())
	err := New(Config{Socket: sock}, b, st, make(feed), nil).Run(context.Background(), func() {})
	if err == nil || !strings.Contains(err.Error(), "another DMI server") {
		t.Errorf("second server on %s: %v, want a refusal", sock, err)
	}
}

// TestRegisterWaitsForDevices checks a mapper that registers before the
// node has its devices waits for them instead of getting an empty answer,
// within its deadline.
func TestRegisterWaitsForDevices(t *testing.T) {
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	source := make(feed)
	sock, stop := startDMI(t, b, shortDir(t), source, Config{})
	defer stop()
	dmi := dial(t, sock)
	req := &pb.MapperRegisterRequest{WithData: true, Mapper: &pb.MapperInfo{Name: "m", Protocol: "modbus-tcp", Address: []byte("/nonexistent.sock")}}

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := dmi.MapperRegister(short, req)
	wantCode(t, "register before the devices, deadline passed", err, codes.DeadlineExceeded)

	answered := make(chan *pb.MapperRegisterResponse, 1)
	go func() {
		resp, err := dmi.MapperRegister(context.Background(), req)
		if err != nil {
			t.Errorf("MapperRegister: %v", err)
		}
		answered <- resp
	}()
	source <- catalogOf(t, model("m1"), device("thermo-0", "m1", "modbus-tcp", "20"))
	select {
	case resp := <-answered:
		if len(resp.GetDeviceList()) != 1 || len(resp.GetModelList()) != 1 {
			t.Errorf("a waiting registration got %v, want thermo-0 and m1", resp)
		}
	case <-time.After(waitFor):
		t.Fatal("the registration was never answered")
	}
}

// TestRunAgain checks the module runs again after its run ends, as the
// supervisor restarts a failed module: the mapper comes back from the
// store and gets the changes after the new run's first catalog.
func TestRunAgain(t *testing.T) {
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	dir := shortDir(t)
	st := openStore(t, dir)
	mod := New(Config{Socket: filepath.Join(dir, "dmi.sock"), CallTimeout: 2 * time.Second}, b, st, nil, nil)
	mapper := startMapper(t)
	for run := range 2 {
		source := make(feed)
		mod.source = source
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		ready := make(chan struct{})
		go func() { done <- mod.Run(ctx, func() { close(ready) }) }()
		<-ready
		source <- catalogOf(t, model("m1"), device("thermo-0", "m1", "modbus-tcp", "20"))
		if run == 0 {
			_, err := dial(t, mod.cfg.Socket).MapperRegister(context.Background(), &pb.MapperRegisterRequest{WithData: true,
				Mapper: &pb.MapperInfo{Name: "m", Protocol: "modbus-tcp", Address: []byte(mapper.sock)}})
			if err != nil {
				t.Fatalf("MapperRegister: %v", err)
			}
		}
		source <- catalogOf(t, model("m1"), device("thermo-0", "m1", "modbus-tcp", strconv.Itoa(30+run)))
		c := wantCalls(t, mapper, "UpdateDevice default/thermo-0")[0]
		if got := c.device.GetSpec().GetProperties()[0].GetDesired().GetValue(); got != strconv.Itoa(30+run) {
			t.Errorf("run %d: desired %q", run, got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
}
