package dmi

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/config"
	pb "github.com/edgehost/edgehost/host/dmi/v1beta1"
	"github.com/edgehost/edgehost/host/eventbus"
	"github.com/edgehost/edgehost/host/pluginhost"
	"github.com/edgehost/edgehost/host/store"
	"github.com/edgehost/edgehost/host/twin"
	"github.com/edgehost/edgehost/host/wasm"
	"github.com/edgehost/edgehost/internal/plugintest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// waitFor bounds every wait in these tests; it is a hang guard, not a
// speed claim.
const waitFor = 20 * time.Second

// startFor bounds a module's start: the plugin host compiles the twin
// plugin, which takes long under -race on a cold cache.
const startFor = 3 * time.Minute

// shortDir is a temporary directory with a path short enough for unix
// sockets (t.TempDir's can pass the 107-byte limit).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dmi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// run starts a module under the test and returns once it is ready; it
// stops at the end of the test, which fails if the run ended with an error.
func run(t *testing.T, name string, mod interface {
	Run(context.Context, func()) error
}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- mod.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("%s ended before ready: %v", name, err)
	case <-time.After(startFor):
		t.Fatalf("%s not ready", name)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// feed is a Source the test drives: the catalogs it is given, in order.
type feed chan *Catalog

func (f feed) Watch(ctx context.Context, update func(*Catalog)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-f:
			update(c)
		}
	}
}

// openStore opens a store in dir.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "edgehost.db"), &store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// nodeRig is a node as the daemon wires it: the real embedded MQTT broker,
// the twin module with the real devicetwin plugin, and the DMI module, on
// one bus, with a module in group hub standing where the cloud link goes.
type nodeRig struct {
	bus      *bus.Bus
	dmiSock  string
	mqttAddr string
	hub      chan abi.Message
	mqtt     chan mqttMessage // every $hw/events/# publish, from before the twin starts
}

// wasmMapperPlugin is the test wasm mapper of protocol "virtual".
const wasmMapperPlugin = "host/dmi/testdata/plugins/wasmmapper"

// newNodeRig starts the node; with wasmMapper the test wasm mapper plugin
// runs too, reporting the device valve at every tick.
func newNodeRig(t *testing.T, devicesDir string, source Source, cfg Config, wasmMapper bool) *nodeRig {
	t.Helper()
	dir := shortDir(t)
	wasmFile, err := plugintest.Build("plugins/devicetwin")
	if err != nil {
		t.Fatal(err)
	}
	mapperFile, err := plugintest.Build(wasmMapperPlugin)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dir)
	rt, err := wasm.NewRuntime(context.Background(), wasm.RuntimeConfig{CacheDir: plugintest.CacheDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	b := bus.New(bus.Options{})
	t.Cleanup(b.Close)
	r := &nodeRig{bus: b, dmiSock: filepath.Join(dir, "dmi.sock"), mqttAddr: freeAddr(t), hub: make(chan abi.Message, 10000)}
	collect(t, b, "hub", eventbus.HubGroup, r.hub)

	evCfg := config.Default().Modules.EventBus
	evCfg.Mode, evCfg.Embedded.Address = "embedded", r.mqttAddr
	ev := eventbus.New(evCfg, b, st, nil)
	run(t, "eventbus", ev)
	r.mqtt = subscribe(t, r.mqttAddr, "$hw/events/#")
	limits := config.Limits{MemoryPages: 256, CallTimeout: 5 * time.Second, MaxMessageBytes: 1 << 20, Instances: 2}
	list := []config.Plugin{{Name: twin.DefaultPlugin, Path: wasmFile, Config: config.JSON(`{"node_name":"edge-1"}`), Limits: limits}}
	if wasmMapper {
		list = append(list, config.Plugin{Name: "wasmmapper", Path: mapperFile, Config: config.JSON(`{"device":"default/valve"}`),
			Limits: limits, TickInterval: 250 * time.Millisecond})
	}
	ph := pluginhost.New(b, rt, st, ev, config.Plugins{Enable: true, Dir: filepath.Join(dir, "plugins"), Limits: limits, List: list}, nil)
	run(t, "plugins", ph)
	run(t, "twin", twin.New(b, twin.Config{DevicesDir: devicesDir, Lanes: 4}, nil))
	// The twin hands the plugin the devices in the background; reports
	// before that would find no device.
	waitMQTT(t, r.mqtt, "$hw/events/node/edge-1/membership/updated")
	cfg.Socket = r.dmiSock
	run(t, "dmi", New(cfg, b, st, source, nil))
	return r
}

// collect registers a module that records every message it receives.
func collect(t *testing.T, b *bus.Bus, name, group string, into chan abi.Message) {
	ep, err := b.Register(name, group)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ep.Close)
	go func() {
		for {
			m, err := ep.Receive(context.Background())
			if err != nil {
				return
			}
			into <- m
		}
	}()
}

// freeAddr returns a loopback address with a port free at the time of the
// call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// mqttMessage is one MQTT publish a subscriber saw.
type mqttMessage struct {
	topic   string
	payload []byte
}

var clientSeq atomic.Int64

// subscribe connects a real paho client to addr and records what arrives on
// filter.
func subscribe(t *testing.T, addr, filter string) chan mqttMessage {
	t.Helper()
	got := make(chan mqttMessage, 10000)
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("dmi-test-app-" + strconv.Itoa(int(clientSeq.Add(1)))).
		SetAutoReconnect(false).SetConnectTimeout(waitFor)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { got <- mqttMessage{m.Topic(), m.Payload()} })
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("mqtt subscribe: %v", tok.Error())
	}
	return got
}

// dial is a mapper's client of the node's DMI socket.
func dial(t *testing.T, sock string) pb.DeviceManagerServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewDeviceManagerServiceClient(conn)
}

// mapperCall is one call a test mapper received.
type mapperCall struct {
	method string
	id     string     // namespace/name of the device or model
	device *pb.Device // RegisterDevice, UpdateDevice
	model  *pb.DeviceModel
}

// testMapper is the mapper side of DMI as mapper-framework runs it: a gRPC
// DeviceMapperService on its own unix socket, recording each call.
type testMapper struct {
	pb.UnimplementedDeviceMapperServiceServer
	sock    string
	calls   chan mapperCall
	refused chan struct{} // a call was refused while fail was set

	mu   sync.Mutex
	fail bool // answer every call with an error
}

func startMapper(t *testing.T) *testMapper {
	t.Helper()
	m := &testMapper{sock: filepath.Join(shortDir(t), "mapper.sock"), calls: make(chan mapperCall, 100), refused: make(chan struct{}, 1)}
	l, err := net.Listen("unix", m.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterDeviceMapperServiceServer(srv, m)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return m
}

func (m *testMapper) record(c mapperCall) error {
	m.mu.Lock()
	fail := m.fail
	m.mu.Unlock()
	if fail {
		select {
		case m.refused <- struct{}{}:
		default:
		}
		return errMapperDown
	}
	m.calls <- c
	return nil
}

var errMapperDown = errors.New("the test mapper refuses calls")

func (m *testMapper) RegisterDevice(_ context.Context, r *pb.RegisterDeviceRequest) (*pb.RegisterDeviceResponse, error) {
	d := r.GetDevice()
	if err := m.record(mapperCall{method: "RegisterDevice", id: d.GetNamespace() + "/" + d.GetName(), device: d}); err != nil {
		return nil, err
	}
	return &pb.RegisterDeviceResponse{DeviceName: d.GetName(), DeviceNamespace: d.GetNamespace()}, nil
}

func (m *testMapper) UpdateDevice(_ context.Context, r *pb.UpdateDeviceRequest) (*pb.UpdateDeviceResponse, error) {
	d := r.GetDevice()
	return &pb.UpdateDeviceResponse{}, m.record(mapperCall{method: "UpdateDevice", id: d.GetNamespace() + "/" + d.GetName(), device: d})
}

func (m *testMapper) RemoveDevice(_ context.Context, r *pb.RemoveDeviceRequest) (*pb.RemoveDeviceResponse, error) {
	return &pb.RemoveDeviceResponse{}, m.record(mapperCall{method: "RemoveDevice", id: r.GetDeviceNamespace() + "/" + r.GetDeviceName()})
}

func (m *testMapper) CreateDeviceModel(_ context.Context, r *pb.CreateDeviceModelRequest) (*pb.CreateDeviceModelResponse, error) {
	md := r.GetModel()
	if err := m.record(mapperCall{method: "CreateDeviceModel", id: md.GetNamespace() + "/" + md.GetName(), model: md}); err != nil {
		return nil, err
	}
	return &pb.CreateDeviceModelResponse{DeviceModelName: md.GetName(), DeviceModelNamespace: md.GetNamespace()}, nil
}

func (m *testMapper) UpdateDeviceModel(_ context.Context, r *pb.UpdateDeviceModelRequest) (*pb.UpdateDeviceModelResponse, error) {
	md := r.GetModel()
	return &pb.UpdateDeviceModelResponse{}, m.record(mapperCall{method: "UpdateDeviceModel", id: md.GetNamespace() + "/" + md.GetName(), model: md})
}

func (m *testMapper) RemoveDeviceModel(_ context.Context, r *pb.RemoveDeviceModelRequest) (*pb.RemoveDeviceModelResponse, error) {
	return &pb.RemoveDeviceModelResponse{}, m.record(mapperCall{method: "RemoveDeviceModel", id: r.GetModelNamespace() + "/" + r.GetModelName()})
}

// next waits for the mapper's next call.
func (m *testMapper) next(t *testing.T) mapperCall {
	t.Helper()
	select {
	case c := <-m.calls:
		return c
	case <-time.After(waitFor):
		t.Fatal("the mapper got no call")
	}
	return mapperCall{}
}
