// Command stuck is a test mapper whose reads never return: each one spins
// until the host's call timeout ends it. Opens and closes are answered.
package main

import (
	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
)

func init() {
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		if m.Route.Operation != abi.MapperOpRead {
			return m.Reply(nil), nil
		}
		for n := 0; ; n++ {
			spin = n
		}
	})
}

// spin keeps the loop from being optimised away.
var spin int

func main() {}
