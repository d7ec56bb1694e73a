package runtime

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeKind is which of a container's probes: liveness, readiness,
// startup.
type probeKind int

const (
	liveness probeKind = iota
	readiness
	startup
)

func (k probeKind) String() string {
	return [...]string{"liveness", "readiness", "startup"}[k]
}

// probeResult is a probe's verdict so far.
type probeResult int

const (
	resultUnknown probeResult = iota
	resultSuccess
	resultFailure
)

// Probe defaults: the API server's.
const (
	defaultProbeTimeout   = time.Second
	defaultProbePeriod    = 10 * time.Second
	defaultProbeFailures  = 3
	defaultProbeSuccesses = 1
)

// probeUserAgent is the User-Agent of HTTP probes, kubelet's.
const probeUserAgent = "kube-probe/1.32"

// probeKey names one probe of one container (by CRI id, so a restarted
// container starts its probes anew, as kubelet's workers do).
type probeKey struct {
	container string
	kind      probeKind
}

// prober runs a worker goroutine per probe of every running container
// and keeps their verdicts; a changed verdict asks the module for a
// sync, which turns it into the container's ready/started status or, for
// a failed liveness or startup probe, a restart.
type prober struct {
	kick func()

	mu      sync.Mutex
	workers map[probeKey]*probeWorker
	gen     uint64 // the sync generation; workers not touched in it go
	wg      sync.WaitGroup
}

// probeWorker is one probe's loop and its verdict.
type probeWorker struct {
	cancel  context.CancelFunc
	gen     uint64
	result  probeResult
	message string
}

// probeTarget is where a container's HTTP and TCP probes go and how its
// exec probes run.
type probeTarget struct {
	cri       *criClient
	container string // CRI id
	host      string // the pod's IP
	spec      *v1.Container
	started   time.Time
}

func newProber(kick func()) *prober {
	return &prober{kick: kick, workers: map[probeKey]*probeWorker{}}
}

// beginSync starts a sync generation: the workers of containers the sync
// does not ensure are stopped by endSync.
func (p *prober) beginSync() {
	p.mu.Lock()
	p.gen++
	p.mu.Unlock()
}

// endSync stops the workers of containers no longer running.
func (p *prober) endSync() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, w := range p.workers {
		if w.gen != p.gen {
			w.cancel()
			delete(p.workers, k)
		}
	}
}

// stop stops every worker and waits for them.
func (p *prober) stop() {
	p.mu.Lock()
	for k, w := range p.workers {
		w.cancel()
		delete(p.workers, k)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// ensure keeps a worker running for each probe of the running container
// t and returns their verdicts.
func (p *prober) ensure(ctx context.Context, t probeTarget) probeVerdicts {
	v := probeVerdicts{}
	for kind, probe := range map[probeKind]*v1.Probe{liveness: t.spec.LivenessProbe, readiness: t.spec.ReadinessProbe, startup: t.spec.StartupProbe} {
		if probe == nil {
			continue
		}
		k := probeKey{container: t.container, kind: kind}
		p.mu.Lock()
		w, ok := p.workers[k]
		if !ok {
			wctx, cancel := context.WithCancel(ctx)
			w = &probeWorker{cancel: cancel, result: initialResult(kind)}
			p.workers[k] = w
			p.wg.Go(func() { p.run(wctx, k, probe, t) })
		}
		w.gen = p.gen
		v[kind] = verdict{result: w.result, message: w.message}
		p.mu.Unlock()
	}
	return v
}

// initialResult is a probe's verdict before it first ran, kubelet's: a
// container is not ready until its readiness probe succeeds, is live
// until its liveness probe fails, and has not started until its startup
// probe succeeds.
func initialResult(kind probeKind) probeResult {
	switch kind {
	case readiness:
		return resultFailure
	case liveness:
		return resultSuccess
	}
	return resultUnknown
}

// verdict is one probe's result and, for a failure, the last failure's
// message.
type verdict struct {
	result  probeResult
	message string
}

// probeVerdicts are a container's probes' verdicts; a probe the
// container does not have is absent.
type probeVerdicts map[probeKind]verdict

// started reports whether the container counts as started: no startup
// probe, or it succeeded.
func (v probeVerdicts) started() bool {
	s, ok := v[startup]
	return !ok || s.result == resultSuccess
}

// ready reports whether the container is ready: started, and no
// readiness probe or it succeeds.
func (v probeVerdicts) ready() bool {
	r, ok := v[readiness]
	return v.started() && (!ok || r.result == resultSuccess)
}

// failed returns the probe (liveness or startup) whose failure means the
// container must be killed, and its verdict.
func (v probeVerdicts) failed() (probeKind, verdict, bool) {
	for _, k := range []probeKind{startup, liveness} {
		if r, ok := v[k]; ok && r.result == resultFailure {
			return k, r, true
		}
	}
	return 0, verdict{}, false
}

// run is one probe's loop: after initialDelaySeconds from the
// container's start, every periodSeconds, each try bounded by
// timeoutSeconds. A verdict flips after failureThreshold failures or
// successThreshold successes in a row. Liveness and readiness wait for
// a startup probe to succeed; a startup probe stops once it has; a failed
// liveness or startup probe stops until the container is replaced.
func (p *prober) run(ctx context.Context, k probeKey, probe *v1.Probe, t probeTarget) {
	period := seconds(probe.PeriodSeconds, defaultProbePeriod)
	timeout := seconds(probe.TimeoutSeconds, defaultProbeTimeout)
	wait := time.Until(t.started.Add(time.Duration(probe.InitialDelaySeconds) * time.Second))
	c := newProbeCounter(probe)
	timer := time.NewTimer(max(wait, 0))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(period)
		if k.kind != startup && t.spec.StartupProbe != nil && !p.hasStarted(k.container) {
			continue
		}
		ok, msg := runProbe(ctx, probe, t, timeout)
		if ctx.Err() != nil {
			return
		}
		res, changed := c.observe(ok)
		if !changed {
			continue
		}
		p.mu.Lock()
		w, live := p.workers[k]
		if live {
			w.result, w.message = res, msg
		}
		p.mu.Unlock()
		if !live {
			return
		}
		p.kick()
		if (k.kind == startup && res == resultSuccess) || (k.kind != readiness && res == resultFailure) {
			return
		}
	}
}

// hasStarted reports whether the startup probe of container succeeded.
func (p *prober) hasStarted(container string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	w, ok := p.workers[probeKey{container: container, kind: startup}]
	return ok && w.result == resultSuccess
}

// seconds is n seconds, def when n is not positive.
func seconds(n int32, def time.Duration) time.Duration {
	if n <= 0 {
		return def
	}
	return time.Duration(n) * time.Second
}

// probeCounter turns single tries into a verdict with the probe's
// thresholds.
type probeCounter struct {
	successes, failures int32 // the thresholds
	run                 int32 // consecutive tries with the same outcome
	lastOK              bool
	result              probeResult
}

func newProbeCounter(probe *v1.Probe) *probeCounter {
	c := &probeCounter{successes: probe.SuccessThreshold, failures: probe.FailureThreshold}
	if c.successes <= 0 {
		c.successes = defaultProbeSuccesses
	}
	if c.failures <= 0 {
		c.failures = defaultProbeFailures
	}
	return c
}

// observe counts one try and returns the verdict and whether it changed.
func (c *probeCounter) observe(ok bool) (probeResult, bool) {
	if c.run > 0 && ok == c.lastOK {
		c.run++
	} else {
		c.run, c.lastOK = 1, ok
	}
	want := resultFailure
	threshold := c.failures
	if ok {
		want, threshold = resultSuccess, c.successes
	}
	if c.run >= threshold && c.result != want {
		c.result = want
		return want, true
	}
	return c.result, false
}

// runProbe tries probe once and returns whether it passed and, if not,
// why.
func runProbe(ctx context.Context, probe *v1.Probe, t probeTarget, timeout time.Duration) (bool, string) {
	switch h := probe.ProbeHandler; {
	case h.Exec != nil:
		code, out, err := t.cri.execSync(ctx, t.container, h.Exec.Command, timeout)
		if err != nil {
			return false, err.Error()
		}
		if code != 0 {
			return false, fmt.Sprintf("command %q exited with %d: %s", h.Exec.Command, code, truncate(out, 256))
		}
		return true, ""
	case h.HTTPGet != nil:
		return httpProbe(ctx, h.HTTPGet, t, timeout)
	case h.TCPSocket != nil:
		port, err := probePort(h.TCPSocket.Port, t.spec)
		if err != nil {
			return false, err.Error()
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = t.host
		}
		d := net.Dialer{Timeout: timeout}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	}
	return false, "probe has no handler"
}

// httpProbe is kubelet's HTTP probe: a GET that passes with a status
// from 200 to 399; HTTPS is not verified; redirects are not followed.
func httpProbe(ctx context.Context, g *v1.HTTPGetAction, t probeTarget, timeout time.Duration) (bool, string) {
	port, err := probePort(g.Port, t.spec)
	if err != nil {
		return false, err.Error()
	}
	host := g.Host
	if host == "" {
		host = t.host
	}
	scheme := "http"
	if g.Scheme == v1.URISchemeHTTPS {
		scheme = "https"
	}
	path := g.Path
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	u, err = u.Parse(path)
	if err != nil {
		return false, fmt.Sprintf("path %q: %v", g.Path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", probeUserAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if h.Name == "Host" {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return true, ""
}

// probePort resolves a probe's port: a number, or the name of one of the
// container's ports.
func probePort(p intstr.IntOrString, c *v1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("probe port %d is not a port", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("probe port %q: the container has no port of that name", p.StrVal)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
