package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels on every sandbox and container this module makes: kubelet's,
// so crictl and other tools read them, and edgehost's own, which marks
// what the garbage collector may remove.
const (
	labelManaged       = "edgehost.io/managed"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelContainerName = "io.kubernetes.container.name"
)

// Annotations holding a hash of the spec a sandbox or container was made
// from: when the pod's spec changes (in Kubernetes, a container's image),
// what was made from the old one is replaced, as kubelet does.
const (
	annotationSandboxHash   = "edgehost.io/sandbox-hash"
	annotationContainerHash = "edgehost.io/container-hash"
)

// specHash is a short hash of v's JSON.
func specHash(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// sandboxHash covers what a sandbox is made from.
func sandboxHash(pod *v1.Pod) string {
	var ports []v1.ContainerPort
	for _, c := range pod.Spec.Containers {
		ports = append(ports, c.Ports...)
	}
	return specHash([]any{pod.Spec.HostNetwork, pod.Spec.HostPID, pod.Spec.HostIPC, pod.Spec.Hostname, pod.Spec.SecurityContext, ports})
}

// changed reports whether annotations record a hash other than want; an
// object with none (made before hashes were recorded) is kept.
func changed(annotations map[string]string, key, want string) bool {
	got, ok := annotations[key]
	return ok && got != want
}

// cpuPeriod is the CFS period CPU limits are expressed in (kubelet's 100 ms).
const cpuPeriod = 100000

// decodePod decodes a stored pod and fills the defaults the API server
// would have (a pod from `hub apply` has none).
func decodePod(content []byte) (*v1.Pod, error) {
	var pod v1.Pod
	if err := json.Unmarshal(content, &pod); err != nil {
		return nil, fmt.Errorf("decode pod: %w", err)
	}
	if pod.UID == "" {
		return nil, fmt.Errorf("pod %s/%s has no metadata.uid", pod.Namespace, pod.Name)
	}
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	if pod.Spec.RestartPolicy == "" {
		pod.Spec.RestartPolicy = v1.RestartPolicyAlways
	}
	for _, cs := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if cs[i].ImagePullPolicy == "" {
				cs[i].ImagePullPolicy = defaultPullPolicy(cs[i].Image)
			}
		}
	}
	return &pod, nil
}

// defaultPullPolicy is the API server's: Always for :latest or no tag,
// IfNotPresent otherwise.
func defaultPullPolicy(image string) v1.PullPolicy {
	name := image
	if i := strings.LastIndex(name, "@"); i >= 0 {
		return v1.PullIfNotPresent
	}
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	tag, ok := strings.CutPrefix(name[strings.Index(name+":", ":"):], ":")
	if !ok || tag == "latest" {
		return v1.PullAlways
	}
	return v1.PullIfNotPresent
}

// unsupported names every field of pod edgehost does not implement yet,
// by its path in the spec ("spec.initContainers",
// "spec.containers[0].livenessProbe"). A pod with any is refused, not run
// with the field ignored.
func unsupported(pod *v1.Pod) []string {
	var out []string
	s := &pod.Spec
	add := func(cond bool, path string) {
		if cond {
			out = append(out, path)
		}
	}
	add(len(s.EphemeralContainers) > 0, "spec.ephemeralContainers")
	add(s.SecurityContext != nil && (s.SecurityContext.SELinuxOptions != nil || s.SecurityContext.Sysctls != nil || s.SecurityContext.SeccompProfile != nil || s.SecurityContext.AppArmorProfile != nil), "spec.securityContext")
	add(s.DNSConfig != nil, "spec.dnsConfig")
	add(len(s.HostAliases) > 0, "spec.hostAliases")
	add(s.ShareProcessNamespace != nil && *s.ShareProcessNamespace, "spec.shareProcessNamespace")
	add(s.RuntimeClassName != nil, "spec.runtimeClassName")
	add(len(s.Containers) == 0, "spec.containers (none)")
	for i, v := range s.Volumes {
		vs := v.VolumeSource
		if vs.HostPath == nil && vs.EmptyDir == nil && vs.ConfigMap == nil && vs.Secret == nil && vs.Projected == nil && vs.DownwardAPI == nil {
			out = append(out, fmt.Sprintf("spec.volumes[%d] (%s): %s", i, v.Name, volumeKind(vs)))
		}
		if vs.DownwardAPI != nil {
			out = append(out, unsupportedDownward(pod, vs.DownwardAPI.Items, fmt.Sprintf("spec.volumes[%d].downwardAPI", i))...)
		}
		if vs.Projected != nil {
			for j, src := range vs.Projected.Sources {
				p := fmt.Sprintf("spec.volumes[%d].projected.sources[%d]", i, j)
				add(src.ServiceAccountToken != nil && src.ServiceAccountToken.Path == "", p+".serviceAccountToken.path (empty)")
				add(src.ClusterTrustBundle != nil, p+".clusterTrustBundle")
				add(src.PodCertificate != nil, p+".podCertificate")
				if src.DownwardAPI != nil {
					out = append(out, unsupportedDownward(pod, src.DownwardAPI.Items, p+".downwardAPI")...)
				}
			}
		}
		add(vs.EmptyDir != nil && vs.EmptyDir.Medium != "", fmt.Sprintf("spec.volumes[%d].emptyDir.medium", i))
	}
	for i, c := range s.InitContainers {
		p := fmt.Sprintf("spec.initContainers[%d]", i)
		// restartPolicy Always makes a sidecar, which runs beside the app
		// containers; the API server allows probes and lifecycle on
		// sidecars only.
		add(c.RestartPolicy != nil, p+".restartPolicy (sidecar containers)")
		add(c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil, p+" probes (sidecar containers)")
		out = append(out, unsupportedContainer(pod, c, p)...)
	}
	for i, c := range s.Containers {
		p := fmt.Sprintf("spec.containers[%d]", i)
		for j, pr := range []*v1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if pr != nil {
				out = append(out, unsupportedProbe(pr, p+"."+[]string{"livenessProbe", "readinessProbe", "startupProbe"}[j])...)
			}
		}
		add(c.RestartPolicy != nil, p+".restartPolicy")
		out = append(out, unsupportedContainer(pod, c, p)...)
	}
	return out
}

// unsupportedContainer names what of container c at path p edgehost does
// not implement, for init and app containers alike.
func unsupportedContainer(pod *v1.Pod, c v1.Container, p string) []string {
	var out []string
	add := func(cond bool, path string) {
		if cond {
			out = append(out, path)
		}
	}
	add(c.Lifecycle != nil, p+".lifecycle")
	add(c.Stdin || c.TTY, p+".stdin/tty")
	add(len(c.VolumeDevices) > 0, p+".volumeDevices")
	if sc := c.SecurityContext; sc != nil {
		add(sc.Capabilities != nil || sc.SELinuxOptions != nil || sc.SeccompProfile != nil || sc.AppArmorProfile != nil ||
			sc.ProcMount != nil || sc.AllowPrivilegeEscalation != nil, p+".securityContext (only privileged, runAsUser, runAsGroup, runAsNonRoot, readOnlyRootFilesystem)")
	}
	for j, m := range c.VolumeMounts {
		add(m.SubPath != "" || m.SubPathExpr != "", fmt.Sprintf("%s.volumeMounts[%d].subPath", p, j))
		add(m.MountPropagation != nil, fmt.Sprintf("%s.volumeMounts[%d].mountPropagation", p, j))
	}
	for j, e := range c.Env {
		if f := e.ValueFrom; f != nil {
			add(f.ResourceFieldRef != nil, fmt.Sprintf("%s.env[%d].valueFrom.resourceFieldRef", p, j))
			add(f.FileKeyRef != nil, fmt.Sprintf("%s.env[%d].valueFrom.fileKeyRef", p, j))
			if f.FieldRef != nil && fieldValue(pod, "", f.FieldRef.FieldPath) == nil {
				out = append(out, fmt.Sprintf("%s.env[%d].valueFrom.fieldRef.fieldPath %q", p, j, f.FieldRef.FieldPath))
			}
		}
	}
	return out
}

// unsupportedDownward names the downward API items at path edgehost
// cannot fill: resourceFieldRef, and fields other than the pod's name,
// namespace, uid, labels, annotations, node, service account and host IP.
func unsupportedDownward(pod *v1.Pod, items []v1.DownwardAPIVolumeFile, path string) []string {
	var out []string
	for k, it := range items {
		switch {
		case it.ResourceFieldRef != nil:
			out = append(out, fmt.Sprintf("%s.items[%d].resourceFieldRef", path, k))
		case it.FieldRef == nil:
			out = append(out, fmt.Sprintf("%s.items[%d] (no fieldRef)", path, k))
		case it.FieldRef.FieldPath == "metadata.labels", it.FieldRef.FieldPath == "metadata.annotations":
		case fieldValue(pod, "", it.FieldRef.FieldPath) == nil:
			out = append(out, fmt.Sprintf("%s.items[%d].fieldRef.fieldPath %q", path, k, it.FieldRef.FieldPath))
		}
	}
	return out
}

// unsupportedProbe names what of probe at path edgehost cannot run: a
// gRPC probe, or none or more than one handler.
func unsupportedProbe(probe *v1.Probe, path string) []string {
	h := probe.ProbeHandler
	n := 0
	for _, set := range []bool{h.Exec != nil, h.HTTPGet != nil, h.TCPSocket != nil, h.GRPC != nil} {
		if set {
			n++
		}
	}
	switch {
	case h.GRPC != nil:
		return []string{path + ".grpc"}
	case n != 1:
		return []string{path + " (needs exactly one of exec, httpGet, tcpSocket)"}
	}
	return nil
}

// volumeKind names the source a volume uses, for a refusal.
func volumeKind(vs v1.VolumeSource) string {
	b, _ := json.Marshal(vs)
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return "no source"
	}
	return strings.Join(keys, ",")
}

// fieldValue is a downward-API field's value, nil for a field not
// supported.
func fieldValue(pod *v1.Pod, hostIP, path string) *string {
	var v string
	switch path {
	case "metadata.name":
		v = pod.Name
	case "metadata.namespace":
		v = pod.Namespace
	case "metadata.uid":
		v = string(pod.UID)
	case "spec.nodeName":
		v = pod.Spec.NodeName
	case "spec.serviceAccountName":
		v = pod.Spec.ServiceAccountName
	case "status.hostIP":
		v = hostIP
	default:
		return nil
	}
	return &v
}

// hostNamespaces are the pod's namespace options.
func namespaces(pod *v1.Pod) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if pod.Spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		ns.Pid = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return ns
}

// sandboxConfig is the CRI sandbox of pod's attempt.
func sandboxConfig(pod *v1.Pod, attempt uint32, logDir string) *runtimeapi.PodSandboxConfig {
	hostname := pod.Name
	if pod.Spec.Hostname != "" {
		hostname = pod.Spec.Hostname
	}
	if pod.Spec.HostNetwork {
		hostname = ""
	}
	var ports []*runtimeapi.PortMapping
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 || pod.Spec.HostNetwork {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case v1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case v1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			ports = append(ports, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP})
		}
	}
	sc := &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: namespaces(pod)}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		sc.SupplementalGroups = psc.SupplementalGroups
	}
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt},
		Hostname:     hostname,
		LogDirectory: logDir,
		PortMappings: ports,
		Labels:       podLabels(pod),
		Annotations:  sandboxAnnotations(pod),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{SecurityContext: sc},
	}
}

func sandboxAnnotations(pod *v1.Pod) map[string]string {
	a := map[string]string{annotationSandboxHash: sandboxHash(pod)}
	for k, v := range pod.Annotations {
		if k != annotationSandboxHash {
			a[k] = v
		}
	}
	return a
}

func podLabels(pod *v1.Pod) map[string]string {
	l := map[string]string{labelManaged: "true", labelPodUID: string(pod.UID), labelPodName: pod.Name, labelPodNamespace: pod.Namespace}
	for k, v := range pod.Labels {
		if _, ours := l[k]; !ours {
			l[k] = v
		}
	}
	return l
}

// env resolves a container's environment: envFrom first, then env, later
// entries overriding earlier ones, as kubelet does. lookup returns a
// configmap's or secret's data, or an error that becomes the container's
// CreateContainerConfigError.
func env(pod *v1.Pod, c *v1.Container, hostIP string, lookup objectLookup) ([]*runtimeapi.KeyValue, error) {
	var keys []string
	vals := map[string]string{}
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	for _, from := range c.EnvFrom {
		var data map[string]string
		var err error
		optional := false
		switch {
		case from.ConfigMapRef != nil:
			optional = from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
			data, err = lookup("configmap", pod.Namespace, from.ConfigMapRef.Name)
		case from.SecretRef != nil:
			optional = from.SecretRef.Optional != nil && *from.SecretRef.Optional
			data, err = lookup("secret", pod.Namespace, from.SecretRef.Name)
		}
		if err != nil && !optional {
			return nil, err
		}
		for _, k := range sortedKeys(data) {
			set(from.Prefix+k, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, expand(e.Value, vals))
			continue
		}
		f := e.ValueFrom
		switch {
		case f.FieldRef != nil:
			if v := fieldValue(pod, hostIP, f.FieldRef.FieldPath); v != nil {
				set(e.Name, *v)
			}
		case f.ConfigMapKeyRef != nil, f.SecretKeyRef != nil:
			typ, ref := "configmap", v1.LocalObjectReference{}
			var key string
			var optional *bool
			if r := f.ConfigMapKeyRef; r != nil {
				ref, key, optional = r.LocalObjectReference, r.Key, r.Optional
			} else {
				typ, ref, key, optional = "secret", f.SecretKeyRef.LocalObjectReference, f.SecretKeyRef.Key, f.SecretKeyRef.Optional
			}
			data, err := lookup(typ, pod.Namespace, ref.Name)
			opt := optional != nil && *optional
			if err != nil {
				if opt {
					continue
				}
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			v, ok := data[key]
			if !ok {
				if opt {
					continue
				}
				return nil, fmt.Errorf("env %s: couldn't find key %s in %s %s/%s", e.Name, key, typ, pod.Namespace, ref.Name)
			}
			set(e.Name, v)
		}
	}
	out := make([]*runtimeapi.KeyValue, len(keys))
	for i, k := range keys {
		out[i] = &runtimeapi.KeyValue{Key: k, Value: []byte(vals[k])}
	}
	return out, nil
}

// expand replaces $(VAR) with an earlier variable's value, as kubelet
// does; $$ escapes, and an unknown reference stays as written.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			if end := strings.IndexByte(s[i:], ')'); end > 0 {
				name := s[i+2 : i+end]
				if v, ok := vals[name]; ok {
					b.WriteString(v)
				} else {
					b.WriteString(s[i : i+end+1])
				}
				i += end
				continue
			}
			b.WriteByte('$')
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// resources turns a container's limits and requests into CRI linux
// resources: a memory limit, a CFS quota from the CPU limit, CPU shares
// from the request (from the limit when there is no request), as
// kubelet's cgroupfs driver does.
func resources(c *v1.Container) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	if mem, ok := c.Resources.Limits[v1.ResourceMemory]; ok {
		r.MemoryLimitInBytes = mem.Value()
	}
	cpuLimit, hasLimit := c.Resources.Limits[v1.ResourceCPU]
	if hasLimit {
		r.CpuPeriod = cpuPeriod
		r.CpuQuota = max(cpuLimit.MilliValue()*cpuPeriod/1000, 1000)
	}
	req, hasReq := c.Resources.Requests[v1.ResourceCPU]
	if !hasReq && hasLimit {
		req, hasReq = cpuLimit, true
	}
	if hasReq {
		r.CpuShares = max(req.MilliValue()*1024/1000, 2)
	}
	return r
}

// containerConfig is the CRI container of c's attempt, with its
// environment and mounts resolved.
func containerConfig(pod *v1.Pod, c *v1.Container, attempt uint32, image string, envs []*runtimeapi.KeyValue, mounts []*runtimeapi.Mount) *runtimeapi.ContainerConfig {
	labels := map[string]string{labelManaged: "true", labelPodUID: string(pod.UID), labelPodName: pod.Name,
		labelPodNamespace: pod.Namespace, labelContainerName: c.Name}
	sc := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaces(pod)}
	if s := c.SecurityContext; s != nil {
		sc.Privileged = s.Privileged != nil && *s.Privileged
		sc.ReadonlyRootfs = s.ReadOnlyRootFilesystem != nil && *s.ReadOnlyRootFilesystem
		if s.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *s.RunAsUser}
		}
		if s.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *s.RunAsGroup}
		}
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if sc.RunAsUser == nil && psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if sc.RunAsGroup == nil && psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SupplementalGroups = psc.SupplementalGroups
	}
	return &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: c.Image},
		Command:    c.Command,
		Args:       c.Args,
		WorkingDir: c.WorkingDir,
		Envs:       envs,
		Mounts:     mounts,
		Labels:     labels,
		Annotations: map[string]string{"io.kubernetes.container.restartCount": strconv.FormatUint(uint64(attempt), 10),
			annotationContainerHash: specHash(c)},
		LogPath: fmt.Sprintf("%s/%d.log", c.Name, attempt),
		Linux:   &runtimeapi.LinuxContainerConfig{Resources: resources(c), SecurityContext: sc},
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
