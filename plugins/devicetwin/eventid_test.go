//go:build !wasip1

package main

import (
	"strings"
	"testing"
)

func TestNewEventIDIsAFreshUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := strings.Clone(newEventID()) // the id is a view, valid until the next one
		if !uuidV4.MatchString(id) {
			t.Fatalf("event id %q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("event id %q made twice", id)
		}
		seen[id] = true
	}
}
