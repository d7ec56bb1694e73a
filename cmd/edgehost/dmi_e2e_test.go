package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	pb "github.com/edgehost/edgehost/host/dmi/v1beta1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestDaemonServesDMI runs the real daemon with its built-in twin and a
// devices directory, and a mapper-framework-style mapper against its DMI
// socket: it registers with data, gets its device, and its twin report
// comes back on the daemon's MQTT broker.
func TestDaemonServesDMI(t *testing.T) {
	bin := buildBinary(t)
	dataDir, broker := shortDataDir(t), freeAddr(t)
	devicesDir := filepath.Join(dataDir, "devices")
	if err := os.MkdirAll(devicesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	device := "apiVersion: devices.kubeedge.io/v1beta1\nkind: Device\nmetadata: {name: meter-0, namespace: default}\n" +
		"spec:\n  protocol:\n    protocolName: modbus-tcp\n    configData: {data: {ip: 127.0.0.1, port: 502}}\n" +
		"  properties:\n    - name: power\n      desired: {value: \"0\", metadata: {type: int}}\n"
	if err := os.WriteFile(filepath.Join(devicesDir, "meter.yaml"), []byte(device), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dataDir, "edgehost.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("modules:\n  eventbus:\n    embedded:\n      address: %s\n  devices:\n    dir: %s\n", broker, devicesDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, bin, cfg, dataDir)

	results := make(chan []byte, 10)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + broker).SetClientID("dmi-e2e"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtt connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	tok := c.Subscribe("$hw/events/device/default/meter-0/twin/update/result", 1, func(_ mqtt.Client, m mqtt.Message) { results <- m.Payload() })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	// The mapper's own DeviceMapperService, as mapper-framework serves it.
	mapperSock := filepath.Join(dataDir, "modbus.sock")
	l, err := net.Listen("unix", mapperSock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterDeviceMapperServiceServer(srv, pb.UnimplementedDeviceMapperServiceServer{})
	go srv.Serve(l)
	defer srv.Stop()

	conn, err := grpc.NewClient("unix://"+filepath.Join(dataDir, "dmi.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dmi := pb.NewDeviceManagerServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := dmi.MapperRegister(ctx, &pb.MapperRegisterRequest{WithData: true, Mapper: &pb.MapperInfo{
		Name: "modbus-mapper", Protocol: "modbus-tcp", Address: []byte(mapperSock)}})
	if err != nil {
		t.Fatalf("MapperRegister: %v\nlogs:\n%s", err, d.logs)
	}
	if len(resp.GetDeviceList()) != 1 || resp.GetDeviceList()[0].GetName() != "meter-0" {
		t.Fatalf("registered with data, got %v", resp)
	}
	// The twin hands its plugin the devices in the background: until then
	// a report finds no device (404), and a mapper reports again at its
	// next cycle, as this one does.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = dmi.ReportDeviceStatus(ctx, &pb.ReportDeviceStatusRequest{DeviceName: "meter-0", DeviceNamespace: "default",
			ReportedDevice: &pb.DeviceStatus{Twins: []*pb.Twin{{PropertyName: "power", ObservedDesired: &pb.TwinProperty{Value: "0"}, Reported: &pb.TwinProperty{Value: "1500"}}}}})
		if err != nil {
			t.Fatalf("ReportDeviceStatus: %v", err)
		}
		var b []byte
		select {
		case b = <-results:
		case <-time.After(30 * time.Second):
			t.Fatalf("no twin/update/result\nlogs:\n%s", d.logs)
		}
		var r struct {
			Code int
			Twin map[string]struct{ Actual struct{ Value string } }
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("twin/update/result %s: %v", b, err)
		}
		if r.Code == 404 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if r.Twin["power"].Actual.Value != "1500" {
			t.Errorf("twin/update/result = %s, want power actual 1500", b)
		}
		break
	}
	d.stop(t)
	if !strings.Contains(d.logs.String(), "mapper registered") {
		t.Errorf("the daemon did not log the registration:\n%s", d.logs)
	}
}
