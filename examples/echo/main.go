// Command echo is an edgehost plugin that replies to every message with its
// content unchanged and operation "response". It is the benchmark target:
// m.Reply turns the request into its reply in place, so a call allocates
// nothing.
package main

import "github.com/edgehost/edgehost/sdk"

func init() {
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		return m.Reply(m.Content), nil
	})
}

func main() {}
