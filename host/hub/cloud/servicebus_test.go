package cloud

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/hub/wire"
	"github.com/gorilla/websocket"
)

// TestServicebusBothWays: Request gets the node's reply by parent id; a
// node's edge → cloud upload is answered with the target's body (op
// response), and one whose target cannot be called with op error.
func TestServicebusBothWays(t *testing.T) {
	r := newRig(t, Options{})
	conn, _, err := r.dial("edge-1", "msg", true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for deadline := time.Now().Add(5 * time.Second); len(r.srv.Nodes()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node not connected")
		}
	}
	write := func(m abi.Message, kind wire.Kind) {
		t.Helper()
		m.Header.Timestamp = 1
		frame, err := wire.Encode(m, kind)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			t.Fatal(err)
		}
	}
	read := func() abi.Message {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, data, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		d, err := wire.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		return d.Message
	}

	// Cloud → edge: the reply to the request is returned.
	got := make(chan Received, 1)
	go func() {
		req := abi.Message{Route: abi.Route{Source: "router_servicebus", Group: "user", Operation: "GET", Resource: "80:/x"}, Content: []byte(`{}`)}
		rep, err := r.srv.Request(context.Background(), "edge-1", req, wire.KindObject)
		if err != nil {
			t.Error(err)
		}
		got <- rep
	}()
	req := read()
	write(abi.Message{Header: abi.Header{ID: "r1", ParentID: req.Header.ID}, Route: abi.Route{Source: "servicebus", Group: "user", Operation: "upload"},
		Content: []byte(`{"status_code":200}`)}, wire.KindObject)
	if rep := <-got; rep.Message.Header.ID != "r1" || string(rep.Message.Content) != `{"status_code":200}` {
		t.Errorf("reply %+v", rep.Message)
	}

	// Edge → cloud: the target is called with the payload.
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		io.WriteString(w, req.Method+" "+string(b))
	}))
	defer target.Close()
	app := `{"method":"PUT","targetURL":"` + target.URL + `/t","payload":{"v":1}}`
	write(abi.Message{Header: abi.Header{ID: "u1", Sync: true}, Route: abi.Route{Source: "servicebus", Group: "user", Operation: "upload", Resource: target.URL + "/t"},
		Content: []byte(app)}, wire.KindBytes)
	if m := read(); m.Header.ParentID != "u1" || m.Route.Operation != abi.OpResponse || string(m.Content) != `PUT {"v":1}` {
		t.Errorf("answer %+v %s", m.Route, m.Content)
	}
	dead := "http://127.0.0.1:1/none"
	write(abi.Message{Header: abi.Header{ID: "u2"}, Route: abi.Route{Source: "servicebus", Group: "user", Operation: "upload", Resource: dead},
		Content: []byte(`{"method":"GET","targetURL":"` + dead + `"}`)}, wire.KindBytes)
	if m := read(); m.Header.ParentID != "u2" || m.Route.Operation != abi.OpError {
		t.Errorf("failed call answered %+v %s", m.Route, m.Content)
	}
}
