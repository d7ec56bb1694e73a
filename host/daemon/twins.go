package daemon

import (
	"fmt"

	"github.com/edgehost/edgehost/host/api"
)

var errNoTwin = fmt.Errorf("%w: the twin module is disabled in the config", api.ErrConflict)

// Twins implements api.TwinsBackend.
func (d *Daemon) Twins() ([]api.DeviceTwin, error) {
	if d.twin == nil {
		return nil, errNoTwin
	}
	return d.twin.Twins()
}

// Twin implements api.TwinsBackend.
func (d *Daemon) Twin(id string) (api.DeviceTwin, error) {
	if d.twin == nil {
		return api.DeviceTwin{}, errNoTwin
	}
	return d.twin.Twin(id)
}
