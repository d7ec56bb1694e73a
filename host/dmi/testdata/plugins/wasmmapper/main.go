// Command wasmmapper is a test wasm mapper plugin for the protocol
// "virtual": at each tick it reads its device (a counter standing in for a
// register) and reports the reading as the actual value of the device
// valve's property pos, on the twin's MQTT topic, as a wasm mapper reports.
// Its config names the device: {"device": "default/valve"}.
package main

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/edgehost/edgehost/sdk"
)

var (
	device = "default/valve"
	reads  int
)

func init() {
	sdk.OnInit(func(config []byte) error {
		var c struct{ Device string }
		if len(config) > 0 {
			if err := json.Unmarshal(config, &c); err != nil {
				return errors.New("wasmmapper config: " + err.Error())
			}
		}
		if c.Device != "" {
			device = c.Device
		}
		return nil
	})
	sdk.OnTick(func() error {
		reads++
		payload := `{"event_id":"","timestamp":0,"twin":{"pos":{"actual":{"value":"read-` + strconv.Itoa(reads) + `"}}}}`
		return sdk.MQTTPublish("$hw/events/device/"+device+"/twin/update", []byte(payload), 1, false)
	})
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		return nil, errors.New("wasmmapper takes no messages")
	})
}

func main() {}
