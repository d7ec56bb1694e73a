// Command captest is a test plugin that tries host calls its grants may not
// cover. Operation "send" sends a message to the group and resource in the
// content ("group resource"); "kv" puts the content as a key. It replies
// "ok", or "code N" with the ABI code the host returned.
package main

import (
	"errors"
	"strconv"
	"strings"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
)

func init() {
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		var err error
		switch m.Route.Operation {
		case "send":
			group, resource, _ := strings.Cut(string(m.Content), " ")
			err = sdk.Send(&sdk.Message{Route: sdk.Route{Group: group, Operation: "notify", Resource: resource}})
		case "kv":
			err = sdk.KVPut(string(m.Content), []byte("x"))
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
