package dmi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	pb "github.com/edgehost/edgehost/host/dmi/v1beta1"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// mapper is one registered mapper and what it has been handed. Once the
// mapper is in Module.mappers, held and heldModels are written only by the
// sync loop, and, for a mapper restored from the store, by the first
// setCatalog, before any pass.
type mapper struct {
	info       *pb.MapperInfo
	conn       *grpc.ClientConn
	client     pb.DeviceMapperServiceClient
	held       map[string]*pb.Device
	heldModels map[string]*pb.DeviceModel
	failing    int // calls failed since the last success, for the log
}

// newMapper dials the mapper's socket lazily: nothing connects until the
// first call, and a mapper that restarts is reconnected by gRPC.
func newMapper(info *pb.MapperInfo, held map[string]*pb.Device, heldModels map[string]*pb.DeviceModel) (*mapper, error) {
	conn, err := grpc.NewClient("unix://"+string(info.GetAddress()), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dmi: mapper %s at %q: %w", info.GetName(), info.GetAddress(), err)
	}
	return &mapper{info: info, conn: conn, client: pb.NewDeviceMapperServiceClient(conn), held: held, heldModels: heldModels}, nil
}

// register records a mapper for its protocol, replacing an earlier one of
// the same protocol (as edgecore does), and persists it. held is what the
// mapper now holds: what the MapperRegister answer hands it, or, for a
// registration without data, what it is taken to hold already.
func (m *Module) register(info *pb.MapperInfo, withData bool) (*pb.MapperRegisterResponse, error) {
	m.mu.Lock()
	devices, models := m.boundDevices(info.GetProtocol())
	m.mu.Unlock()
	mp, err := newMapper(info, devices, models)
	if err != nil {
		return nil, err
	}
	if err := m.saveMapper(info); err != nil {
		mp.conn.Close()
		return nil, err
	}
	m.mu.Lock()
	old := m.mappers[info.GetProtocol()]
	m.mappers[info.GetProtocol()] = mp
	m.mu.Unlock()
	if old != nil {
		old.conn.Close()
		m.log.Info("mapper replaced", "protocol", info.GetProtocol(), "name", info.GetName(),
			"address", string(info.GetAddress()), "previous", old.info.GetName(), "previous_address", string(old.info.GetAddress()))
	} else {
		m.log.Info("mapper registered", "protocol", info.GetProtocol(), "name", info.GetName(),
			"version", info.GetVersion(), "address", string(info.GetAddress()), "devices", len(devices))
	}
	m.wake() // the catalog may have moved on since the snapshot
	resp := &pb.MapperRegisterResponse{}
	if !withData {
		return resp, nil
	}
	for _, id := range slices.Sorted(maps.Keys(models)) {
		resp.ModelList = append(resp.ModelList, models[id])
	}
	for _, id := range slices.Sorted(maps.Keys(devices)) {
		resp.DeviceList = append(resp.DeviceList, devices[id])
	}
	return resp, nil
}

// saveMapper persists a mapper under its protocol.
func (m *Module) saveMapper(info *pb.MapperInfo) error {
	b, err := proto.Marshal(info)
	if err != nil {
		return fmt.Errorf("dmi: save mapper %s: %w", info.GetName(), err)
	}
	if err := m.ns.Update(func(bk *bolt.Bucket) error { return bk.Put([]byte(info.GetProtocol()), b) }); err != nil {
		return fmt.Errorf("dmi: save mapper %s: %w", info.GetName(), err)
	}
	return nil
}

// loadMappers restores the persisted mappers. Each is taken to hold the
// devices of its protocol in the first catalog (setCatalog), which is what
// it held when the daemon stopped unless the devices changed meanwhile; a
// mapper that registers again gets them afresh.
func (m *Module) loadMappers() error {
	var infos []*pb.MapperInfo
	err := m.ns.View(func(bk *bolt.Bucket) error {
		return bk.ForEach(func(k, v []byte) error {
			info := &pb.MapperInfo{}
			if err := proto.Unmarshal(v, info); err != nil || info.GetProtocol() != string(k) {
				m.log.Warn("unreadable mapper record skipped", "protocol", string(k), "error", err)
				return nil
			}
			infos = append(infos, info)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("dmi: load mappers: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, info := range infos {
		mp, err := newMapper(info, nil, nil)
		if err != nil {
			m.log.Warn("stored mapper not restored", "protocol", info.GetProtocol(), "error", err)
			continue
		}
		m.mappers[info.GetProtocol()] = mp
	}
	return nil
}

// closeMappers closes the connections to the mappers and forgets them;
// the next run restores them from the store.
func (m *Module) closeMappers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, mp := range m.mappers {
		mp.conn.Close()
		delete(m.mappers, p)
	}
}

// retryAfter is how soon a pass that had failed calls is repeated.
const retryAfter = 5 * time.Second

// syncLoop runs a pass whenever woken, and again after retryAfter while
// calls fail, until ctx ends.
func (m *Module) syncLoop(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-retry.C:
		}
		if !m.syncPass(ctx) && ctx.Err() == nil {
			retry.Reset(retryAfter)
		}
	}
}

// syncPass brings every mapper in step with the catalog and reports whether
// every call succeeded. Models come first, so a device never arrives
// before its model, and go last.
func (m *Module) syncPass(ctx context.Context) bool {
	m.mu.Lock()
	if m.catalog == nil {
		m.mu.Unlock()
		return true
	}
	type job struct {
		mp      *mapper
		devices map[string]*pb.Device
		models  map[string]*pb.DeviceModel
	}
	var jobs []job
	for _, p := range slices.Sorted(maps.Keys(m.mappers)) {
		mp := m.mappers[p]
		devices, models := m.boundDevices(p)
		jobs = append(jobs, job{mp, devices, models})
	}
	m.mu.Unlock()
	ok := true
	for _, j := range jobs {
		ok = m.syncMapper(ctx, j.mp, j.devices, j.models) && ok
	}
	return ok
}

// syncMapper makes the calls that take mp from what it holds to devices and
// models, recording each call that succeeds.
func (m *Module) syncMapper(ctx context.Context, mp *mapper, devices map[string]*pb.Device, models map[string]*pb.DeviceModel) bool {
	ok := true
	for _, id := range slices.Sorted(maps.Keys(models)) {
		want, have := models[id], mp.heldModels[id]
		switch {
		case have == nil:
			ok = m.call(ctx, mp, "CreateDeviceModel", id, func(ctx context.Context) error {
				_, err := mp.client.CreateDeviceModel(ctx, &pb.CreateDeviceModelRequest{Model: want})
				return err
			}, func() { mp.heldModels[id] = want }) && ok
		case !proto.Equal(have, want):
			ok = m.call(ctx, mp, "UpdateDeviceModel", id, func(ctx context.Context) error {
				_, err := mp.client.UpdateDeviceModel(ctx, &pb.UpdateDeviceModelRequest{Model: want})
				return err
			}, func() { mp.heldModels[id] = want }) && ok
		}
	}
	for _, id := range slices.Sorted(maps.Keys(devices)) {
		want, have := devices[id], mp.held[id]
		switch {
		case have == nil:
			ok = m.call(ctx, mp, "RegisterDevice", id, func(ctx context.Context) error {
				_, err := mp.client.RegisterDevice(ctx, &pb.RegisterDeviceRequest{Device: want})
				return err
			}, func() { mp.held[id] = want }) && ok
		case !proto.Equal(have, want):
			ok = m.call(ctx, mp, "UpdateDevice", id, func(ctx context.Context) error {
				_, err := mp.client.UpdateDevice(ctx, &pb.UpdateDeviceRequest{Device: want})
				return err
			}, func() { mp.held[id] = want }) && ok
		}
	}
	for _, id := range slices.Sorted(maps.Keys(mp.held)) {
		if devices[id] != nil {
			continue
		}
		have := mp.held[id]
		ok = m.call(ctx, mp, "RemoveDevice", id, func(ctx context.Context) error {
			_, err := mp.client.RemoveDevice(ctx, &pb.RemoveDeviceRequest{DeviceName: have.GetName(), DeviceNamespace: have.GetNamespace()})
			return err
		}, func() { delete(mp.held, id) }) && ok
	}
	for _, id := range slices.Sorted(maps.Keys(mp.heldModels)) {
		if models[id] != nil {
			continue
		}
		have := mp.heldModels[id]
		ok = m.call(ctx, mp, "RemoveDeviceModel", id, func(ctx context.Context) error {
			_, err := mp.client.RemoveDeviceModel(ctx, &pb.RemoveDeviceModelRequest{ModelName: have.GetName(), ModelNamespace: have.GetNamespace()})
			return err
		}, func() { delete(mp.heldModels, id) }) && ok
	}
	return ok
}

// call makes one call to a mapper within the call timeout and, if it
// succeeds, records it with done. The first failure of a run of failures
// is a WARN; the rest are counted at debug level until a call succeeds.
func (m *Module) call(ctx context.Context, mp *mapper, method, id string, fn func(context.Context) error, done func()) bool {
	callCtx, cancel := context.WithTimeout(ctx, m.cfg.CallTimeout)
	defer cancel()
	err := fn(callCtx)
	if err != nil {
		if ctx.Err() != nil {
			return false // shutting down
		}
		mp.failing++
		args := []any{"mapper", mp.info.GetName(), "protocol", mp.info.GetProtocol(), "call", method, "id", id, "error", err}
		if mp.failing == 1 {
			m.log.Warn("mapper call failed; retrying", args...)
		} else {
			m.log.Debug("mapper call failed", append(args, "failed", mp.failing)...)
		}
		return false
	}
	if mp.failing > 0 {
		m.log.Info("mapper answers again", "mapper", mp.info.GetName(), "protocol", mp.info.GetProtocol(), "failed_calls", mp.failing)
		mp.failing = 0
	}
	m.log.Debug("mapper call", "mapper", mp.info.GetName(), "call", method, "id", id)
	done()
	return true
}
