package eventbus

import (
	"errors"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"+/+", "/x", true},
		{"#", "$hw/events/upload/x", false},
		{"+/user/#", "$hw/user/x", false},
		{"+/user/#", "tenant/user/x/y", true},
		{"$hw/events/upload/#", "$hw/events/upload/a/b", true},
		{"$hw/events/device/+/+/twin/+", "$hw/events/device/default/dev1/twin/update", true},
		// The twin's own results are one level deeper: no loop back.
		{"$hw/events/device/+/+/twin/+", "$hw/events/device/default/dev1/twin/update/result", false},
		{"$hw/events/device/+/+/twin/+", "$hw/events/device/default/dev1/twin/update/document", false},
		{"$hw/events/device/+/+/twin/+", "$hw/events/device/default/dev1/twin/get/result", false},
		{"$hw/events/device/+/+/state/update", "$hw/events/device/default/dev1/state/update/result", false},
		{"$hw/events/node/+/membership/get", "$hw/events/node/n1/membership/get/result", false},
		{"$hw/events/node/+/membership/get", "$hw/events/node/n1/membership/updated", false},
	}
	for _, c := range cases {
		if got := Match(c.filter, c.topic); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.filter, c.topic, got, c.want)
		}
	}
}

func TestNoDefaultTopicMatchesTwinResults(t *testing.T) {
	results := []string{
		"$hw/events/device/default/sensor-3/twin/update/result",
		"$hw/events/device/default/sensor-3/twin/update/delta",
		"$hw/events/device/default/sensor-3/twin/update/document",
		"$hw/events/device/default/sensor-3/twin/get/result",
		"$hw/events/device/default/cloud-dev-2/state/update/result",
		"$hw/events/node/peer-node/membership/get/result",
		"$hw/events/node/peer-node/membership/updated",
		"$hw/events/device//twin/update/result",
		"$hw/events/device/thermo-0/twin/update/result",
		"$hw/events/device/thermo-0/twin/get/result",
		"$hw/events/device/thermo-0/state/update/result",
	}
	for _, topic := range results {
		for _, f := range DefaultTopics() {
			if Match(f, topic) {
				t.Errorf("default filter %q matches the twin's own result %q: it would loop back", f, topic)
			}
		}
	}
}

func TestCoversFilters(t *testing.T) {
	cases := []struct {
		rule, sub string
		want      bool
	}{
		{"a/#", "a/+/c", true},
		{"a/+", "a/+", true},
		{"a/+", "a/#", false},
		{"a/b", "a/+", false},
		{"#", "#", true},
	}
	for _, c := range cases {
		if got := covers(c.rule, c.sub); got != c.want {
			t.Errorf("covers(%q, %q) = %v, want %v", c.rule, c.sub, got, c.want)
		}
	}
}

func TestValidTopicAndFilter(t *testing.T) {
	for _, bad := range []string{"", "a/+", "a/#", "a\x00b", "\xff"} {
		if err := ValidTopic(bad); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ValidTopic(%q) = %v, want ErrInvalidTopic", bad, err)
		}
	}
	for _, bad := range []string{"", "a/#/b", "a/b+", "a#"} {
		if err := ValidFilter(bad); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("ValidFilter(%q) = %v, want ErrInvalidTopic", bad, err)
		}
	}
	for _, good := range DefaultTopics() {
		if err := ValidFilter(good); err != nil {
			t.Errorf("ValidFilter(%q) = %v", good, err)
		}
	}
}

func TestTwinResourceRoundTrip(t *testing.T) {
	topic := "$hw/events/device/default/dev1/twin/update"
	got, err := TopicOfTwinResource(TwinResource(topic))
	if err != nil || got != topic {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	if _, err := TopicOfTwinResource("not base64!"); err == nil {
		t.Fatal("bad resource decoded")
	}
}
