package config

import (
	"strings"
	"testing"
	"time"
)

func TestMetaDefaults(t *testing.T) {
	c := Default()
	if want := (Meta{Enable: true, Lanes: 64, RemoteQueryTimeout: time.Minute, RemoteQueries: 32}); c.Modules.Meta != want {
		t.Errorf("meta = %+v, want %+v", c.Modules.Meta, want)
	}
	c2, err := Parse([]byte("modules:\n  meta:\n    lanes: 8\n    remoteQueryTimeout: 5s\n"), "m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m := c2.Modules.Meta; !m.Enable || m.Lanes != 8 || m.RemoteQueryTimeout != 5*time.Second || m.RemoteQueries != 32 {
		t.Errorf("meta = %+v, want the given fields over the defaults", m)
	}
}

func TestMetaValidate(t *testing.T) {
	c2, err := Parse([]byte("modules:\n  meta:\n    lanes: 0\n    remoteQueryTimeout: -1s\n    remoteQueries: -3\n"), "m.yaml")
	if err == nil {
		t.Fatalf("bad meta section accepted: %+v", c2.Modules.Meta)
	}
	for _, want := range []string{"modules.meta.lanes: must be > 0, got 0", "modules.meta.remoteQueryTimeout: must be > 0", "modules.meta.remoteQueries: must be > 0, got -3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := Parse([]byte("modules:\n  meta:\n    enable: false\n    lanes: 0\n"), "m.yaml"); err != nil {
		t.Errorf("a disabled meta section is not checked, got %v", err)
	}
}
