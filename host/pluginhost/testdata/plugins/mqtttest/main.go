// Command mqtttest is a test plugin for the MQTT imports and the per-call
// outbox. Operation "publish" publishes "x" on the topic in the content;
// "subscribe" subscribes to the filter in the content. Operations "kvsend"
// and "kvpublish" put the content under the key "held", then send it to
// group user (resource "held/x") or publish it on "held/x"; with content
// "trap" they then panic, so the call fails after the message was accepted.
// It replies "ok", or "code N" with the ABI code the host returned. Each
// edgehost_tick sends a message to group user, resource "tick/x".
package main

import (
	"errors"
	"strconv"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
)

func init() {
	sdk.OnTick(func() error {
		return sdk.Send(&sdk.Message{Route: sdk.Route{Group: "user", Operation: "notify", Resource: "tick/x"}})
	})
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		var err error
		switch m.Route.Operation {
		case "publish":
			err = sdk.MQTTPublish(string(m.Content), []byte("x"), 0, false)
		case "subscribe":
			err = sdk.MQTTSubscribe(string(m.Content))
		case "kvsend":
			if err = sdk.KVPut("held", m.Content); err == nil {
				err = sdk.Send(&sdk.Message{Route: sdk.Route{Group: "user", Operation: "notify", Resource: "held/x"}, Content: m.Content})
			}
		case "kvpublish":
			if err = sdk.KVPut("held", m.Content); err == nil {
				err = sdk.MQTTPublish("held/x", m.Content, 0, false)
			}
		}
		if err == nil && string(m.Content) == "trap" {
			panic("mqtttest: trap after the message was accepted")
		}
		var code abi.Code
		switch {
		case err == nil:
			return m.Reply([]byte("ok")), nil
		case errors.As(err, &code):
			return m.Reply([]byte("code " + strconv.Itoa(int(code)))), nil
		}
		return m.Reply([]byte("error " + err.Error())), nil
	})
}

func main() {}
