// Command mqtt-echo is an edgehost plugin that republishes every payload it
// receives on examples/echo/in to examples/echo/out: a newcomer's first check
// that MQTT → bus → wasm plugin → MQTT works.
//
// Its config may rename the topics: {"in": "a/b", "out": "c/d"}.
package main

import (
	"errors"

	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/jsonlite"
)

// topics are the plugin's settings, read once at init.
var topics = struct{ In, Out string }{In: "examples/echo/in", Out: "examples/echo/out"}

// decodeConfig reads {"in", "out"} into topics with sdk/jsonlite, not
// encoding/json, which would add ~1 MB to the module.
func decodeConfig(config []byte) error {
	d := jsonlite.NewDecoder(config)
	d.Object([]string{"in", "out"}, func(name string) {
		if name == "in" {
			d.String(&topics.In)
		} else {
			d.String(&topics.Out)
		}
	})
	return d.Finish()
}

func init() {
	sdk.OnInit(func(config []byte) error {
		if len(config) > 0 {
			if err := decodeConfig(config); err != nil {
				return errors.New("mqtt-echo config: " + err.Error())
			}
		}
		return sdk.MQTTSubscribe(topics.In)
	})
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		topic, ok := m.MQTTTopic()
		if !ok || topic != topics.In {
			return nil, errors.New("mqtt-echo handles only MQTT messages on " + topics.In)
		}
		// QoS 0: the round trip benchmark's setting; the payload is copied
		// by the host before MQTTPublish returns.
		return nil, sdk.MQTTPublish(topics.Out, m.Content, 0, false)
	})
}

func main() {}
