// Command httpc is a test plugin for the outbound HTTP import (abi/SPEC.md
// section 5.3), through the SDK. The operation is the HTTP method, the
// resource the URL, the content the body; the reply is
//
//	"status N seen X-SEEN len L BODY"   the response
//	"code N"                            a failure code
//
// A request with operation RAW sends the content as the raw request
// framing, to exercise the host's checks.
package main

import (
	"errors"
	"strconv"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
)

//go:wasmimport edgehost_v1 http_request
func rawHTTPRequest(req unsafe.Pointer, reqLen, timeoutMS int32, out unsafe.Pointer, outCap int32) int32

func init() {
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) {
		if m.Route.Operation == "RAW" {
			out := make([]byte, 64)
			n := rawHTTPRequest(unsafe.Pointer(unsafe.SliceData(m.Content)), int32(len(m.Content)), 0, unsafe.Pointer(&out[0]), 64)
			return m.Reply([]byte("raw " + strconv.Itoa(int(n)))), nil
		}
		resp, err := sdk.HTTPDo(m.Route.Operation, m.Route.Resource, sdk.HTTPHeader{{"X-Plugin", "httpc"}}, m.Content, 0)
		var code abi.Code
		switch {
		case errors.As(err, &code):
			return m.Reply([]byte("code " + strconv.Itoa(int(code)))), nil
		case err != nil:
			return nil, err
		}
		out := "status " + strconv.Itoa(resp.Status) + " seen " + resp.Header.Get("X-Seen") + " len " + strconv.Itoa(len(resp.Body)) + " "
		return m.Reply(append([]byte(out), resp.Body...)), nil
	})
}

func main() {}
