// Command mqtt-echo is an edgehost plugin that republishes every payload it
// receives on examples/echo/in to examples/echo/out: a newcomer's first check
// that MQTT → bus → wasm plugin → MQTT works.
//
// Its config may rename the topics: {"in": "a/b", "out": "c/d"}.
package main

import (
	"encoding/json"
	"errors"

	"github.com/edgehost/edgehost/sdk"
)

// topics are the plugin's settings, read once at init.
var topics = struct {
	In  string `json:"in"`
	Out string `json:"out"`
}{In: "examples/echo/in", Out: "examples/echo/out"}

func init() {
	sdk.OnInit(func(config []byte) error {
		if len(config) > 0 {
			if err := json.Unmarshal(config, &topics); err != nil {
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
