package wasm

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

func TestValidTopic(t *testing.T) {
	cases := []struct {
		s             string
		topic, filter bool
	}{
		{"a/b", true, true},
		{"a//b", true, true},
		{"/", true, true},
		{"", false, false},
		{"a/+", false, true},
		{"+/+/x", false, true},
		{"a/#", false, true},
		{"#", false, true},
		{"a/#/b", false, false},
		{"a/b+", false, false},
		{"a/#b", false, false},
		{"a\x00b", false, false},
		{"\xff", false, false},
		{strings.Repeat("x", maxTopicLen+1), false, false},
	}
	for _, c := range cases {
		if got := validTopic([]byte(c.s), false); got != c.topic {
			t.Errorf("validTopic(%.20q, topic) = %v", c.s, got)
		}
		if got := validTopic([]byte(c.s), true); got != c.filter {
			t.Errorf("validTopic(%.20q, filter) = %v", c.s, got)
		}
	}
}

func TestCodeOfPassesMatchedCodes(t *testing.T) {
	busy := abi.NewError("queue full", abi.Busy)
	cases := []struct {
		err  error
		want abi.Code
	}{
		{fmt.Errorf("eventbus: publish: %w", busy), abi.Busy},
		{fmt.Errorf("x: %w", abi.NewError("payload too large", abi.TooLarge)), abi.TooLarge},
		{abi.Denied, abi.Denied},
		{errors.New("other"), abi.Unavailable},
	}
	for _, c := range cases {
		if got := codeOf(c.err, abi.Unavailable); got != c.want {
			t.Errorf("codeOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
