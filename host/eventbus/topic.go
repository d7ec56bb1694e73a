package eventbus

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxTopicLen is the longest topic or filter MQTT can carry (a 16-bit
// length prefix).
const maxTopicLen = 65535

// Match reports whether the MQTT topic filter matches topic, per MQTT 3.1.1
// section 4.7: "+" matches exactly one level, a trailing "#" matches the
// parent level and everything below it, and a filter starting with a
// wildcard does not match a topic starting with "$" (so "#" never sees
// "$hw/..."). Match does not validate its arguments; an invalid filter
// simply matches less. It does not allocate.
func Match(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	return covers(filter, topic)
}

// covers reports whether every topic that sub matches is also matched by
// filter. For a plain topic (no wildcards) it is Match without the "$"
// rule; for a subscription filter it decides whether an ACL rule allows
// the whole subscription: "a/+" covers "a/b" and "a/+" but not "a/#".
func covers(filter, sub string) bool {
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		sl, srest, smore := strings.Cut(sub, "/")
		switch {
		case sl == "#":
			return false // only "#" covers "#"
		case sl == "+":
			if fl != "+" {
				return false
			}
		case fl != "+" && fl != sl:
			return false
		}
		if !fmore || !smore {
			// One side ended: they match if both did, or if the filter
			// goes on with a final "#" (which matches the parent level).
			return fmore == smore || (fmore && frest == "#")
		}
		filter, sub = frest, srest
	}
}

// ValidTopic checks a topic name for publishing: 1 to 65535 bytes of UTF-8
// without NUL and without the wildcards "+" and "#".
func ValidTopic(topic string) error {
	if err := validName(topic); err != nil {
		return fmt.Errorf("topic %.80q: %w: %w", topic, ErrInvalidTopic, err)
	}
	if strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("topic %.80q: %w: wildcards are not allowed in a topic name", topic, ErrInvalidTopic)
	}
	return nil
}

// ValidFilter checks a topic filter for subscribing: 1 to 65535 bytes of
// UTF-8 without NUL, where "+" fills a whole level and "#" is a whole last
// level.
func ValidFilter(filter string) error {
	if err := validName(filter); err != nil {
		return fmt.Errorf("filter %.80q: %w: %w", filter, ErrInvalidTopic, err)
	}
	for rest, more := filter, true; more; {
		var level string
		level, rest, more = strings.Cut(rest, "/")
		switch {
		case level == "#" && more:
			return fmt.Errorf("filter %.80q: %w: # must be the last level", filter, ErrInvalidTopic)
		case len(level) > 1 && strings.ContainsAny(level, "+#"):
			return fmt.Errorf("filter %.80q: %w: a wildcard must fill a whole level", filter, ErrInvalidTopic)
		}
	}
	return nil
}

// validName checks what topic names and filters have in common.
func validName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > maxTopicLen:
		return fmt.Errorf("%d bytes, longer than %d", len(s), maxTopicLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("contains NUL")
	}
	return nil
}
