//go:build !wasip1

package sdk_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/sdk"
	"github.com/edgehost/edgehost/sdk/sdktest"
)

func TestReplyWriter(t *testing.T) {
	defer sdk.Handle(nil)
	h := sdktest.New()
	withVersion := request("hello")
	withVersion.Header.ResourceVersion = "41"
	withParent := request("hello")
	withParent.Header.ParentID = "earlier"
	cases := []struct {
		name    string
		req     *sdk.Message
		handler sdk.ReplyHandlerFunc
		want    *sdk.Message // the reply, ID and timestamp aside; nil: none
	}{
		{"the default reply echoes the request's route", request("hello"), func(m *sdk.Message, w *sdk.ReplyWriter) error {
			w.Write(m.Content)
			return nil
		}, &sdk.Message{
			Header:  sdk.Header{ParentID: "req-1"},
			Route:   sdk.Route{Source: "app", Group: "user", Operation: abi.OpResponse, Resource: "demo/x"},
			Content: []byte("hello"),
		}},
		{"it keeps the request's resource version", withVersion, func(m *sdk.Message, w *sdk.ReplyWriter) error {
			return nil
		}, &sdk.Message{
			Header: sdk.Header{ParentID: "req-1", ResourceVersion: "41"},
			Route:  sdk.Route{Source: "app", Group: "user", Operation: abi.OpResponse, Resource: "demo/x"},
		}},
		{"a request's parent_id is not the reply's", withParent, func(m *sdk.Message, w *sdk.ReplyWriter) error {
			w.WriteString("ok")
			return nil
		}, &sdk.Message{
			Header:  sdk.Header{ParentID: "req-1"},
			Route:   sdk.Route{Source: "app", Group: "user", Operation: abi.OpResponse, Resource: "demo/x"},
			Content: []byte("ok"),
		}},
		{"content built in place and an operation set", request("hello"), func(m *sdk.Message, w *sdk.ReplyWriter) error {
			w.SetOperation(abi.OpUpdate)
			w.WriteString("len=")
			w.Write(strconv.AppendInt(w.AvailableBuffer(), int64(len(m.Content)), 10))
			return nil
		}, &sdk.Message{
			Header:  sdk.Header{ParentID: "req-1"},
			Route:   sdk.Route{Source: "app", Group: "user", Operation: abi.OpUpdate, Resource: "demo/x"},
			Content: []byte("len=5"),
		}},
		{"an operation longer than the default moves the content", request("hello"), func(m *sdk.Message, w *sdk.ReplyWriter) error {
			w.Write(m.Content)
			w.SetOperation("a-much-longer-operation")
			return nil
		}, &sdk.Message{
			Header:  sdk.Header{ParentID: "req-1"},
			Route:   sdk.Route{Source: "app", Group: "user", Operation: "a-much-longer-operation", Resource: "demo/x"},
			Content: []byte("hello"),
		}},
		{"route, resource version and timestamp set", request("hello"), func(m *sdk.Message, w *sdk.ReplyWriter) error {
			w.Write(m.Content)
			w.SetRoute(sdk.Route{Group: "twin", Operation: abi.OpUpdate, Resource: "device/" + strings.Repeat("d", 5000)})
			w.SetResourceVersion("42")
			w.SetTimestamp(1234)
			return nil
		}, &sdk.Message{
			Header:  sdk.Header{ParentID: "req-1", ResourceVersion: "42", Timestamp: 1234},
			Route:   sdk.Route{Group: "twin", Operation: abi.OpUpdate, Resource: "device/" + strings.Repeat("d", 5000)},
			Content: []byte("hello"),
		}},
		{"SetOperation after SetRoute wins", request("hello"), func(m *sdk.Message, w *sdk.ReplyWriter) error {
			w.SetRoute(sdk.Route{Group: "g", Operation: "first", Resource: "r"})
			w.SetOperation("second")
			return nil
		}, &sdk.Message{
			Header: sdk.Header{ParentID: "req-1"},
			Route:  sdk.Route{Group: "g", Operation: "second", Resource: "r"},
		}},
		{"the resource version alone set", withVersion, func(m *sdk.Message, w *sdk.ReplyWriter) error {
			w.SetResourceVersion("")
			return nil
		}, &sdk.Message{
			Header: sdk.Header{ParentID: "req-1"},
			Route:  sdk.Route{Source: "app", Group: "user", Operation: abi.OpResponse, Resource: "demo/x"},
		}},
		{"content larger than the buffer", request("hello"), func(m *sdk.Message, w *sdk.ReplyWriter) error {
			for range 3000 {
				w.Write(m.Content)
			}
			return nil
		}, &sdk.Message{
			Header:  sdk.Header{ParentID: "req-1"},
			Route:   sdk.Route{Source: "app", Group: "user", Operation: abi.OpResponse, Resource: "demo/x"},
			Content: bytes.Repeat([]byte("hello"), 3000),
		}},
		{"NoReply consumes the message", request("hello"), func(m *sdk.Message, w *sdk.ReplyWriter) error {
			w.Write(m.Content)
			return sdk.NoReply
		}, nil},
		{"an error drops what was written and replies with it", request("hello"), func(m *sdk.Message, w *sdk.ReplyWriter) error {
			w.Write(m.Content)
			w.SetOperation("ignored")
			return errors.New("device offline")
		}, &sdk.Message{
			Header:  sdk.Header{ParentID: "req-1"},
			Route:   sdk.Route{Source: "app", Group: "user", Operation: abi.OpError, Resource: "demo/x"},
			Content: []byte("device offline"),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sdk.HandleReply(c.handler)
			for range 2 { // the second time, with the SDK's buffers as the first left them
				r, err := h.Call(c.req)
				if err != nil {
					t.Fatal(err)
				}
				if c.want == nil {
					if r != nil {
						t.Fatalf("reply %+v, want none", r)
					}
					continue
				}
				if r.Header.ID == "" || r.Header.ID == "req-1" || r.Header.Sync || r.Header.Timestamp == 0 {
					t.Fatalf("reply header %+v was not completed as the host does", r.Header)
				}
				want := *c.want
				want.Header.ID = r.Header.ID
				if want.Header.Timestamp == 0 {
					want.Header.Timestamp = r.Header.Timestamp
				}
				if r.Header != want.Header || r.Route != want.Route || !bytes.Equal(r.Content, want.Content) {
					t.Fatalf("reply\n %+v\nwant\n %+v", summary(r), summary(&want))
				}
			}
		})
	}
}

// summary shortens a message's long fields for a failure message.
func summary(m *sdk.Message) sdk.Message {
	s := *m
	if len(s.Route.Resource) > 40 {
		s.Route.Resource = s.Route.Resource[:40] + "..."
	}
	if len(s.Content) > 40 {
		s.Content = append(s.Content[:40:40], "..."...)
	}
	return s
}

func TestReplyWriterFailsTheCallWithABareCode(t *testing.T) {
	defer sdk.Handle(nil)
	sdk.HandleReply(func(m *sdk.Message, w *sdk.ReplyWriter) error {
		w.Write(m.Content)
		return abi.NoHandler
	})
	if r, err := sdktest.New().Call(request("hello")); r != nil || !errors.Is(err, abi.NoHandler) {
		t.Fatalf("reply %+v, err %v", r, err)
	}
}

// TestHandleAndHandleReplyReplaceEachOther checks that the last handler
// registered, of either kind, is the one that runs.
func TestHandleAndHandleReplyReplaceEachOther(t *testing.T) {
	defer sdk.Handle(nil)
	h := sdktest.New()
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) { return m.Reply([]byte("handle")), nil })
	sdk.HandleReply(func(m *sdk.Message, w *sdk.ReplyWriter) error {
		w.WriteString("reply")
		return nil
	})
	if r, err := h.Call(request("")); err != nil || string(r.Content) != "reply" {
		t.Fatalf("after HandleReply: %+v, %v", r, err)
	}
	sdk.Handle(func(m *sdk.Message) (*sdk.Message, error) { return m.Reply([]byte("handle")), nil })
	if r, err := h.Call(request("")); err != nil || string(r.Content) != "handle" {
		t.Fatalf("after Handle: %+v, %v", r, err)
	}
}

// TestViewsFollowEachRequest checks that each handler sees its own
// request, whatever the last handler did to its views and whatever the
// layout of the last request, and that a view kept past the call is
// overwritten, as the aliasing rule says.
func TestViewsFollowEachRequest(t *testing.T) {
	defer sdk.Handle(nil)
	h := sdktest.New()
	var kept *sdk.Message
	var seen []sdk.Message
	sdk.HandleReply(func(m *sdk.Message, w *sdk.ReplyWriter) error {
		kept = m
		seen = append(seen, *m.Clone())
		m.Route.Resource, m.Content = "changed by the handler", nil
		w.Write(kept.Content)
		return nil
	})
	reqs := []*sdk.Message{request("one"), request("one"), request("two, longer"), request(""), request("three")}
	reqs[3].Route.Source = "another source"
	for i, req := range reqs {
		r, err := h.Call(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := seen[i]; got.Route != req.Route || got.Header.ResourceVersion != req.Header.ResourceVersion ||
			!bytes.Equal(got.Content, req.Content) || got.Header.ID != req.Header.ID {
			t.Fatalf("request %d: the handler saw %+v, want %+v", i, got, req)
		}
		if r.Route.Resource != req.Route.Resource {
			t.Fatalf("request %d: reply resource %q: the reply follows the request, not the handler's view", i, r.Route.Resource)
		}
	}
	if kept.Header.ID == "req-1" {
		t.Fatalf("the request kept past the call is intact: %+v", kept.Header)
	}
}
