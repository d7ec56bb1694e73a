package hub

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/hub/certs"
	"github.com/edgehost/edgehost/host/hub/cloud"
	"github.com/edgehost/edgehost/host/hub/outbox"
	"github.com/edgehost/edgehost/host/hub/wire"
)

// TestBootstrapConnectAndEvents: with only a token the edge gets its
// certificate, connects, sends the keepalive first and tells twin, meta,
// bus and taskmanager.
func TestBootstrapConnectAndEvents(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{})
	e := startEdge(t, dir, testConfig(c, dir))
	first := c.next(t, func(cloud.Received) bool { return true })
	if r := first.Message.Route; r != (abi.Route{Source: "websocket", Group: "resource", Operation: "keepalive", Resource: "node"}) ||
		string(first.Message.Content) != "ping" || first.Kind != wire.KindString {
		t.Fatalf("first frame %s, want the keepalive", first.Frame)
	}
	for _, g := range EventGroups {
		m := e.expect(t, g, connEvent(Connected))
		if m.Route.Source != EventSource || m.Route.Group != g || m.Route.Operation != OpConnect {
			t.Errorf("event to %s has route %+v", g, m.Route)
		}
	}
	if !e.hub.Connected() || len(e.hub.NotReady()) != 0 {
		t.Errorf("connected %v, not ready %v", e.hub.Connected(), e.hub.NotReady())
	}
	for _, name := range []string{certs.CAFile, certs.CertFile, certs.KeyFile} {
		fi, err := os.Stat(filepath.Join(dir, "certs", name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v", name, err, fi.Mode())
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, "certs", certs.CertFile))
	b, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "system:node:edge-1" || cert.Subject.Organization[0] != "system:nodes" {
		t.Errorf("certificate subject %s", cert.Subject)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "certs", certs.KeyFile))
	if !strings.HasPrefix(string(key), "-----BEGIN EC PRIVATE KEY-----") {
		t.Errorf("key file starts %.30q", key)
	}
}

// TestBadTokenRefused: a token whose hash is not the cloud CA's fails the
// bootstrap, counted as a dial failure, and no certificate is written.
func TestBadTokenRefused(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{})
	cfg := testConfig(c, dir)
	cfg.Token = strings.Repeat("0", 64) + cfg.Token[64:]
	e := startEdge(t, dir, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for e.hub.Stats().DialFailures == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := e.hub.Stats()
	if st.DialFailures == 0 || !strings.Contains(st.LastError, "bad bootstrap token") {
		t.Fatalf("stats %+v, want a dial failure naming the token", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "certs", certs.CertFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("certificate written after a bad token: %v", err)
	}
	if nr := e.hub.NotReady(); len(nr) != 1 || !strings.Contains(nr[0], "not connected") {
		t.Errorf("not ready = %v", nr)
	}
}

// TestDownstreamDispatch: each route group goes where edgecore sends it;
// a reply reaches the bus request waiting for it.
func TestDownstreamDispatch(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{})
	e := startEdge(t, dir, testConfig(c, dir))
	e.expect(t, "meta", connEvent(Connected))
	waitNode(t, c)
	cases := []struct {
		route abi.Route
		kind  wire.Kind
		group string
	}{
		{abi.Route{Source: "edgecontroller", Group: "resource", Operation: "insert", Resource: "default/pod/nginx"}, wire.KindObject, "meta"},
		{abi.Route{Source: "devicecontroller", Group: "twin", Operation: "update", Resource: "membership"}, wire.KindObject, "twin"},
		{abi.Route{Source: "router_eventbus", Group: "user", Operation: "publish", Resource: "a/b"}, wire.KindString, "bus"},
		{abi.Route{Source: "taskmanager", Group: "taskmanager", Operation: "upgrade", Resource: "task/x"}, wire.KindObject, "taskmanager"},
	}
	for i, tc := range cases {
		content := []byte(`{"n":` + fmt.Sprint(i) + `}`)
		if err := c.Send("edge-1", abi.Message{Route: tc.route, Content: content}, tc.kind); err != nil {
			t.Fatal(err)
		}
		m := e.expect(t, tc.group, func(m abi.Message) bool { return m.Route.Resource != ConnectionResource })
		if m.Route != tc.route || string(m.Content) != string(content) {
			t.Errorf("%s: got %+v %s", tc.group, m.Route, m.Content)
		}
	}
	// A sync request upstream gets the cloud's reply.
	go func() {
		r := c.next(t, func(r cloud.Received) bool { return r.Message.Route.Operation == abi.OpQuery })
		c.Send("edge-1", abi.Message{Header: abi.Header{ParentID: r.Message.Header.ID, ResourceVersion: "9"},
			Route:   abi.Route{Source: "edgecontroller", Group: "resource", Operation: "response", Resource: r.Message.Route.Resource},
			Content: []byte(`{"kind":"ConfigMap"}`)}, wire.KindObject)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reply, err := e.bus.RequestGroup(ctx, Group, abi.Message{Route: abi.Route{Source: "edged", Group: "meta", Operation: "query", Resource: "default/configmap/c"}})
	if err != nil || string(reply.Content) != `{"kind":"ConfigMap"}` || reply.Header.ResourceVersion != "9" {
		t.Fatalf("reply %+v, %v", reply, err)
	}
}

// TestBadFramesRefusedLinkStays: malformed, binary, oversized frames and
// unknown groups are refused and counted by name, and the link carries on.
func TestBadFramesRefusedLinkStays(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{})
	cfg := testConfig(c, dir)
	cfg.MaxFrameBytes = 4096
	e := startEdge(t, dir, cfg)
	e.expect(t, "twin", connEvent(Connected))
	waitNode(t, c)
	bad := [][]byte{
		[]byte(`{not json`),
		[]byte(`{"route":{"group":"twin"}}`),
		[]byte(`{"header":{"msg_id":"x"},"route":{"group":"nosuch"},"content":null}`),
		[]byte(`{"header":{"msg_id":"y"},"route":{"source":"someone","group":"user"},"content":"x"}`),
		[]byte(`{"header":{"msg_id":"z"},"route":{"group":"twin"},"content":"` + strings.Repeat("a", 5000) + `"}`),
	}
	for _, f := range bad {
		if err := c.SendFrame("edge-1", f); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SendBinary("edge-1", []byte("\x00\x01")); err != nil {
		t.Fatal(err)
	}
	if err := c.Send("edge-1", abi.Message{Route: abi.Route{Source: "devicecontroller", Group: "twin", Operation: "update", Resource: "membership"}, Content: []byte(`{}`)}, wire.KindObject); err != nil {
		t.Fatal(err)
	}
	e.expect(t, "twin", func(m abi.Message) bool { return m.Route.Resource == "membership" })
	want := map[string]uint64{"malformed": 2, "unknown_group": 1, "no_route": 1, "too_large": 1, "binary": 1}
	st := e.hub.Stats()
	for k, v := range want {
		if st.Refused[k] != v {
			t.Errorf("refused[%s] = %d, want %d (all: %v)", k, st.Refused[k], v, st.Refused)
		}
	}
	if st.Connects != 1 || st.Disconnects != 0 {
		t.Errorf("connects %d disconnects %d: bad frames must not break the link", st.Connects, st.Disconnects)
	}
}

// TestHalfOpenLink: a proxy that stops forwarding without closing; the
// edge reports cloud_disconnected within two heartbeats and reconnects
// once the proxy heals.
func TestHalfOpenLink(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{})
	p := startProxy(t, c.wsAddr)
	cfg := testConfig(c, dir)
	cfg.Server = p.addr()
	cfg.Heartbeat = 500 * time.Millisecond
	e := startEdge(t, dir, cfg)
	e.expect(t, "twin", connEvent(Connected))
	p.pause()
	paused := time.Now()
	// Written into the stalled connection, never read by the cloud: it
	// must stay in the outbox and go again on the next link.
	e.send(t, abi.Message{Route: abi.Route{Source: "bus", Group: "user", Operation: "upload", Resource: "in/flight"}, Content: []byte("lost-in-transit")})
	waitFor(t, func() bool { return e.hub.Stats().FramesOut == 1 })
	e.expect(t, "twin", connEvent(Disconnected))
	// Two heartbeats from the last frame read, which came at most one
	// heartbeat before the pause; one more for a loaded machine.
	if took := time.Since(paused); took > 3*cfg.Heartbeat {
		t.Errorf("half-open link noticed after %s, want within 2 heartbeats (%s)", took, 2*cfg.Heartbeat)
	}
	if e.hub.Connected() {
		t.Error("Connected() still true")
	}
	e.send(t, abi.Message{Route: abi.Route{Source: "bus", Group: "user", Operation: "upload", Resource: "during/outage"}, Content: []byte("queued")})
	p.heal()
	e.expect(t, "twin", connEvent(Connected))
	for _, want := range []string{"lost-in-transit", "queued"} {
		if r := c.next(t, notKeepalive); string(r.Message.Content) != want {
			t.Errorf("after reconnect the cloud got %s, want %q", r.Frame, want)
		}
	}
	if st := e.hub.Stats(); st.FramesOut != 3 {
		t.Errorf("frames out %d, want 3: the in-flight message twice, then the queued one", st.FramesOut)
	}
}

// TestOutboxOrderAcrossDisconnectAndRestart: upstream messages sent while
// the cloud is away, and across a restart of the edge, all arrive in
// order, and the outbox empties once the cloud has read them.
func TestOutboxOrderAcrossDisconnectAndRestart(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{})
	p := startProxy(t, c.wsAddr)
	cfg := testConfig(c, dir)
	cfg.Server = p.addr()
	cfg.QPS, cfg.Burst = 1000, 100
	e := startEdge(t, dir, cfg)
	e.expect(t, "twin", connEvent(Connected))
	p.pause()
	e.expect(t, "twin", connEvent(Disconnected))
	upload := func(i int) abi.Message {
		return abi.Message{Route: abi.Route{Source: "bus", Group: "user", Operation: "upload", Resource: "t/seq"}, Content: []byte(fmt.Sprint(i))}
	}
	for i := range 50 {
		e.send(t, upload(i))
	}
	waitFor(t, func() bool { return e.box.Stats().Depth == 50 })
	e.stop() // a restart with 50 waiting
	e = startEdge(t, dir, cfg)
	for i := 50; i < 100; i++ {
		e.send(t, upload(i))
	}
	p.heal()
	for i := range 100 {
		r := c.next(t, notKeepalive)
		if string(r.Message.Content) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, r.Message.Content)
		}
	}
	waitFor(t, func() bool { return e.box.Stats().Depth == 0 })
	if st := e.box.Stats(); st.Sent != 100 || st.Appended != 50 {
		// 50 carried over from before the restart, 50 appended since.
		t.Errorf("outbox stats %+v", st)
	}
}

// TestUpstreamRateLimitDelaysNeverDrops: with 20 msg/s and a burst of 5,
// 25 messages take at least a second and all arrive.
func TestUpstreamRateLimitDelaysNeverDrops(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{})
	cfg := testConfig(c, dir)
	cfg.QPS, cfg.Burst = 20, 5
	e := startEdge(t, dir, cfg)
	e.expect(t, "twin", connEvent(Connected))
	start := time.Now()
	for i := range 25 {
		e.send(t, abi.Message{Route: abi.Route{Source: "bus", Group: "user", Operation: "upload", Resource: "r"}, Content: []byte(fmt.Sprint(i))})
	}
	for i := range 25 {
		if r := c.next(t, notKeepalive); string(r.Message.Content) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q", i, r.Message.Content)
		}
	}
	if took := time.Since(start); took < 950*time.Millisecond {
		t.Errorf("25 messages at 20/s with burst 5 went out in %s; the limit did not hold", took)
	}
}

// TestOutboxFullRefusesAndAnswersRequester: a full outbox refuses, counts,
// and a waiting requester gets an error reply at once.
func TestOutboxFullRefusesAndAnswersRequester(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{})
	c.stop() // no cloud: everything stays queued
	e := startEdge(t, dir, testConfig(c, dir), outbox.Options{MaxBytes: 1 << 20})
	big := strings.Repeat("x", 60<<10)
	for range 20 { // 20 × 60 KiB > 1 MiB
		e.send(t, abi.Message{Route: abi.Route{Source: "bus", Group: "user", Operation: "upload", Resource: "big"}, Content: []byte(big)})
	}
	waitFor(t, func() bool { return e.hub.Stats().UpstreamRefused["outbox_full"] > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reply, err := e.bus.RequestGroup(ctx, Group, abi.Message{Route: abi.Route{Source: "edged", Group: "meta", Operation: "query", Resource: "x"}, Content: []byte(big)})
	if err != nil || reply.Route.Operation != abi.OpError || !strings.Contains(string(reply.Content), "outbox full") {
		t.Fatalf("reply %+v, %v; want an error naming the full outbox", reply.Route, err)
	}
	st := e.hub.Stats()
	if st.Outbox.Refused == 0 || st.Outbox.Depth == 0 || st.Outbox.Bytes > st.Outbox.MaxBytes {
		t.Errorf("outbox stats %+v", st.Outbox)
	}
	if nr := e.hub.NotReady(); len(nr) != 2 {
		t.Errorf("not ready = %v, want disconnected and nearly full", nr)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitNode waits until the cloud has the edge's session.
func waitNode(t testing.TB, c *testCloud) {
	t.Helper()
	waitFor(t, func() bool { return len(c.Nodes()) == 1 })
}

// TestReliableSendResendsUntilAck: the reference cloud's admin endpoint
// (what `edgehost hub apply` calls) resends an object with the same
// msg_id until the edge's metamanager ACKs it through the hub.
func TestReliableSendResendsUntilAck(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{ResendInterval: 200 * time.Millisecond})
	e := startEdge(t, dir, testConfig(c, dir))
	e.expect(t, "meta", connEvent(Connected))
	waitNode(t, c)
	admin := httptest.NewServer(c.AdminHandler())
	defer admin.Close()
	msg, err := cloud.ObjectMessage([]byte(`{"kind":"ConfigMap","metadata":{"name":"c","namespace":"ns","resourceVersion":"7"}}`), "update")
	if err != nil {
		t.Fatal(err)
	}
	msg.Header.ID, msg.Header.Timestamp = "apply-1", 1
	frame, _ := wire.Encode(msg, wire.KindObject)
	done := make(chan error, 1)
	go func() {
		resp, err := http.Post(admin.URL+"/nodes/edge-1/messages?ack=1", "application/json", bytes.NewReader(frame))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s: %s", resp.Status, body)
			}
		}
		done <- err
	}()
	isApply := func(m abi.Message) bool { return m.Header.ID == "apply-1" }
	first := e.expect(t, "meta", isApply)
	if first.Route != (abi.Route{Source: "edgecontroller", Group: "resource", Operation: "update", Resource: "ns/configmap/c"}) ||
		first.Header.ResourceVersion != "7" {
		t.Fatalf("first delivery %+v", first)
	}
	e.expect(t, "meta", isApply) // not ACKed: sent again, the same id
	select {
	case err := <-done:
		t.Fatalf("apply returned before the ACK: %v", err)
	default:
	}
	e.send(t, first.Reply(abi.OpResponse, []byte("OK")))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("apply not done 20s after the ACK")
	}
}

// TestCertificateRotation: with a short-lived certificate the edge renews
// it with the current one (the token has expired by then) and reconnects
// with the new one.
func TestCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	c := startCloud(t, filepath.Join(dir, "cloud"), cloud.Options{NodeCertLifetime: 4 * time.Second})
	cfg := testConfig(c, dir)
	cfg.Token = c.CA().Token(time.Second)
	cfg.RotateCertificates = true
	e := startEdge(t, dir, cfg)
	e.expect(t, "twin", connEvent(Connected))
	first, err := certs.LoadClient(cfg.CertDir, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.hub.Stats().Rotations >= 1 })
	e.expect(t, "twin", connEvent(Connected))
	second, err := certs.LoadClient(cfg.CertDir, "edge-1")
	if err != nil {
		t.Fatal(err)
	}
	if first.Certificates[0].Leaf.SerialNumber.Cmp(second.Certificates[0].Leaf.SerialNumber) == 0 {
		t.Fatal("the certificate was not replaced")
	}
	if st := e.hub.Stats(); st.RotationFailures != 0 || st.Connects < 2 {
		t.Errorf("stats %+v", st)
	}
}
