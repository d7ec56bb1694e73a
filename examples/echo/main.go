// Command echo is an edgehost plugin that replies to every message with its
// content unchanged and operation "response". It is the benchmark target,
// so it takes the SDK's allocation-free path: the request is a view of the
// exchange buffer, and w copies its content straight into the reply
// envelope, in a buffer the SDK reuses.
package main

import "github.com/edgehost/edgehost/sdk"

func init() {
	sdk.HandleReply(func(m *sdk.Message, w *sdk.ReplyWriter) error {
		w.Write(m.Content)
		return nil
	})
}

func main() {}
