package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// devicesBackend answers reloads with a report, or with err.
type devicesBackend struct {
	echoBackend
	err error
}

func (b *devicesBackend) ReloadDevices(context.Context) (DevicesReport, error) {
	return DevicesReport{Dir: "/d", Devices: 3, HandedOver: 1, Refused: []string{"/d/b.yaml: line 2: field kind: x"}}, b.err
}

func TestDevicesReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := NewClient(serve(t, &devicesBackend{}, ""), "").ReloadDevices(ctx)
	if err != nil || rep.Devices != 3 || rep.HandedOver != 1 || len(rep.Refused) != 1 || rep.OK() {
		t.Fatalf("reload = %+v, %v", rep, err)
	}
	c := NewClient(serve(t, &devicesBackend{err: fmt.Errorf("%w: no devices dir", ErrConflict)}, ""), "")
	if _, err := c.ReloadDevices(ctx); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "no devices dir") {
		t.Fatalf("reload without a devices dir: %v", err)
	}
	// A backend without devices has no such route.
	if _, err := NewClient(serve(t, &echoBackend{}, ""), "").ReloadDevices(ctx); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("reload on a backend without devices: %v", err)
	}
}
