package daemon

import (
	"errors"
	"fmt"

	"github.com/edgehost/edgehost/host/api"
	"github.com/edgehost/edgehost/host/meta"
)

// errNoMeta is the answer of the meta endpoints when the module is off.
var errNoMeta = fmt.Errorf("the metamanager is not enabled (modules.meta.enable): %w", api.ErrNotFound)

// MetaObject implements api.MetaBackend.
func (d *Daemon) MetaObject(key string) (api.MetaObject, error) {
	if d.meta == nil {
		return api.MetaObject{}, errNoMeta
	}
	o, found, err := d.meta.Get(key)
	switch {
	case errors.Is(err, meta.ErrBadResource):
		return api.MetaObject{}, fmt.Errorf("%w: %w", api.ErrRefused, err)
	case err != nil:
		return api.MetaObject{}, err
	case !found:
		return api.MetaObject{}, fmt.Errorf("no object stored at %q: %w", key, api.ErrNotFound)
	}
	return api.MetaObject{Key: o.Key, ResourceVersion: o.ResourceVersion, Content: o.Content}, nil
}

// MetaObjects implements api.MetaBackend.
func (d *Daemon) MetaObjects(ns, typ string) ([]api.MetaObject, error) {
	if d.meta == nil {
		return nil, errNoMeta
	}
	objs, err := d.meta.List(ns, typ)
	if err != nil {
		return nil, err
	}
	out := make([]api.MetaObject, len(objs))
	for i, o := range objs {
		out[i] = api.MetaObject{Key: o.Key, ResourceVersion: o.ResourceVersion, Content: o.Content}
	}
	return out, nil
}
