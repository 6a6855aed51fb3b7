package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// services and the ports each container must declare (name -> port).
var servicePorts = map[string]map[string]int32{
	"edge":         {"http": 8080, "admin": 9100},
	"chat":         {"grpc": 9090, "admin": 9100},
	"notification": {"grpc": 9090, "admin": 9100},
	"presence":     {"admin": 9100},
}

var serviceNames = []string{"edge", "chat", "notification", "presence"}

// contractMetrics are the metric names the alerts and the edge HPA rely on; the
// services must export them (see deploy/README.md).
var contractMetrics = []string{
	"talim_edge_slow_consumer_closes_total",
	"talim_nats_connected",
	"talim_edge_requests_total",
	"talim_edge_request_duration_seconds_bucket",
	"talim_edge_connections",
}

var overlays = []string{"base", "overlays/dev", "overlays/prod", "mongodb"}

func TestRenderAndDecodeStrictly(t *testing.T) {
	for _, o := range overlays {
		t.Run(o, func(t *testing.T) {
			objs := render(t, o)
			if len(objs) == 0 {
				t.Fatal("nothing rendered")
			}
			kinds := map[string]int{}
			for _, obj := range objs {
				kinds[obj.GVK.Kind]++
			}
			t.Logf("%d objects: %v", len(objs), kinds)
		})
	}
}

func TestBaseIsNamespaceAgnostic(t *testing.T) {
	for _, rel := range []string{"base", "mongodb"} {
		for _, o := range render(t, rel) {
			acc, ok := o.Obj.(metav1.Object)
			if !ok {
				t.Fatalf("%s %s has no metadata", o.GVK.Kind, o.Name)
			}
			if acc.GetNamespace() != "" {
				t.Errorf("%s: %s %s names namespace %q", rel, o.GVK.Kind, o.Name, acc.GetNamespace())
			}
			if o.GVK.Kind == "Namespace" {
				t.Errorf("%s must not create a Namespace", rel)
			}
		}
	}
	for rel, ns := range map[string]string{"overlays/dev": "talim-dev", "overlays/prod": "talim"} {
		for _, o := range render(t, rel) {
			acc := o.Obj.(metav1.Object)
			if o.GVK.Kind != "Namespace" && acc.GetNamespace() != ns {
				t.Errorf("%s: %s %s in namespace %q, want %q", rel, o.GVK.Kind, o.Name, acc.GetNamespace(), ns)
			}
		}
	}
}

// A misspelled field must not slip through: strict decoding is what catches it,
// kustomize itself does not.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("k8s", "base", "presence.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.SplitN(string(good), "\n---\n", 2)
	deployment := docs[0]
	if !strings.Contains(deployment, "readinessProbe:") {
		t.Fatal("fixture lost its readinessProbe")
	}
	if _, _, err := decodeStrict([]byte(deployment)); err != nil {
		t.Fatalf("correct manifest rejected: %v", err)
	}

	cases := map[string]string{
		"readinesProbe": strings.Replace(deployment, "readinessProbe:", "readinesProbe:", 1),
		"ServiceMonitor endpoint": `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  endpoint: [{port: admin}]
`,
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			// Through kustomize, as a real overlay would be.
			dir := t.TempDir()
			write(t, filepath.Join(dir, "kustomization.yaml"), "resources: [bad.yaml]\n")
			write(t, filepath.Join(dir, "bad.yaml"), doc)
			_, err := kustomizeBuild(dir)
			if err == nil {
				t.Fatal("manifest with an unknown field was accepted")
			}
			if !runtime.IsStrictDecodingError(unwrapStrict(err)) {
				t.Fatalf("want a strict decoding error, got %v", err)
			}
			t.Logf("rejected as expected: %v", err)
		})
	}
}

func unwrapStrict(err error) error {
	for e := err; e != nil; {
		if runtime.IsStrictDecodingError(e) {
			return e
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			break
		}
		e = u.Unwrap()
	}
	return err
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWorkloads(t *testing.T) {
	for _, rel := range []string{"base", "overlays/dev", "overlays/prod"} {
		t.Run(rel, func(t *testing.T) {
			objs := render(t, rel)
			cfg := mustFind[*corev1.ConfigMap](t, objs, "talim-config")
			drain, err := time.ParseDuration(cfg.Data["TALIM_EDGE_DRAIN_WINDOW"])
			if err != nil {
				t.Fatalf("TALIM_EDGE_DRAIN_WINDOW: %v", err)
			}
			for _, name := range serviceNames {
				d := mustFind[*appsv1.Deployment](t, objs, name)
				checkPodSpec(t, objs, name, &d.Spec.Template.Spec, drain)
				if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
					t.Errorf("%s: rolling update must keep maxUnavailable 0", name)
				}
				sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
				if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
					t.Errorf("%s: selector does not match its template", name)
				}
			}
			sts := mustFind[*appsv1.StatefulSet](t, objs, "nats")
			checkContainerEnv(t, objs, "nats", sts.Spec.Template.Spec.Containers[0])
		})
	}
}

func checkPodSpec(t *testing.T, objs []object, name string, ps *corev1.PodSpec, drain time.Duration) {
	t.Helper()
	if len(ps.Containers) != 1 {
		t.Fatalf("%s: want 1 container, have %d", name, len(ps.Containers))
	}
	c := ps.Containers[0]
	if c.Name != name {
		t.Errorf("%s: container named %q", name, c.Name)
	}
	// Ports: exactly the contract's.
	have := map[string]int32{}
	for _, p := range c.Ports {
		have[p.Name] = p.ContainerPort
	}
	if !mapsEqual(have, servicePorts[name]) {
		t.Errorf("%s: container ports %v, want %v", name, have, servicePorts[name])
	}
	resolve := func(p intstr.IntOrString) int32 {
		if p.Type == intstr.Int {
			return p.IntVal
		}
		return have[p.StrVal]
	}
	probe := func(kind string, pr *corev1.Probe, path string) {
		if pr == nil || pr.HTTPGet == nil {
			t.Errorf("%s: %s probe must be an HTTP GET", name, kind)
			return
		}
		if pr.HTTPGet.Path != path || resolve(pr.HTTPGet.Port) != 9100 {
			t.Errorf("%s: %s probe is %s on port %v, want %s on 9100", name, kind, pr.HTTPGet.Path, pr.HTTPGet.Port.String(), path)
		}
		if pr.HTTPGet.Port.Type != intstr.String || pr.HTTPGet.Port.StrVal != "admin" {
			t.Errorf("%s: %s probe should use the named port admin", name, kind)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	if c.StartupProbe != nil {
		probe("startup", c.StartupProbe, "/healthz")
	}

	// Shutdown: native sleep preStop, and a grace period longer than preStop + drain.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Errorf("%s: preStop must be the native sleep action (distroless has no shell)", name)
	} else {
		pre := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		if ps.TerminationGracePeriodSeconds == nil {
			t.Errorf("%s: terminationGracePeriodSeconds unset", name)
		} else if grace := time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second; grace <= pre+drain {
			t.Errorf("%s: grace %v must exceed preStop %v + drain %v", name, grace, pre, drain)
		}
	}

	// Security.
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pod must set runAsNonRoot", name)
	}
	if ps.SecurityContext != nil && (ps.SecurityContext.RunAsUser == nil || *ps.SecurityContext.RunAsUser != 65532) {
		t.Errorf("%s: want runAsUser 65532 (distroless nonroot)", name)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, corev1.Capability("ALL")) {
		t.Errorf("%s: container must be read-only, without privilege escalation, dropping ALL capabilities", name)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("%s: the service needs no Kubernetes API token", name)
	}
	if len(ps.TopologySpreadConstraints) == 0 {
		t.Errorf("%s: no topologySpreadConstraints", name)
	}

	// Resources.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			t.Errorf("%s: no %s request", name, r)
		}
		if q, ok := c.Resources.Limits[r]; !ok || q.IsZero() {
			t.Errorf("%s: no %s limit", name, r)
		}
	}
	if c.Image == "" || strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
		t.Errorf("%s: image %q must carry a tag other than latest", name, c.Image)
	}
	checkContainerEnv(t, objs, name, c)
}

// checkContainerEnv: every env name is allowed for the container, and every
// ConfigMap/Secret reference resolves to an object and key that exist.
func checkContainerEnv(t *testing.T, objs []object, name string, c corev1.Container) {
	t.Helper()
	for _, e := range c.Env {
		if !envAllowed(name, e.Name) {
			t.Errorf("%s: env %s is not in knownEnv[%q]", name, e.Name, name)
		}
		if e.ValueFrom == nil {
			continue
		}
		if ref := e.ValueFrom.SecretKeyRef; ref != nil {
			s, ok := find[*corev1.Secret](objs, ref.Name)
			if !ok {
				t.Errorf("%s: env %s refers to missing Secret %s", name, e.Name, ref.Name)
			} else if !secretHas(s, ref.Key) {
				t.Errorf("%s: env %s refers to missing key %s of Secret %s", name, e.Name, ref.Key, ref.Name)
			}
		}
		if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
			cm, ok := find[*corev1.ConfigMap](objs, ref.Name)
			if !ok || cm.Data[ref.Key] == "" && cm.Data != nil {
				t.Errorf("%s: env %s refers to missing ConfigMap key %s/%s", name, e.Name, ref.Name, ref.Key)
			}
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil {
			cm, ok := find[*corev1.ConfigMap](objs, ef.ConfigMapRef.Name)
			if !ok {
				t.Errorf("%s: envFrom missing ConfigMap %s", name, ef.ConfigMapRef.Name)
				continue
			}
			for k := range cm.Data {
				if !envAllowed("", k) {
					t.Errorf("ConfigMap %s key %s is not in knownEnv", cm.Name, k)
				}
			}
		}
		if ef.SecretRef != nil {
			t.Errorf("%s: envFrom a whole Secret leaks other components' secrets; use secretKeyRef", name)
		}
	}
}

func secretHas(s *corev1.Secret, key string) bool {
	if _, ok := s.Data[key]; ok {
		return true
	}
	_, ok := s.StringData[key]
	return ok
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSecretsAndConfigKeys(t *testing.T) {
	for _, rel := range []string{"base", "overlays/dev", "overlays/prod"} {
		objs := render(t, rel)
		s := mustFind[*corev1.Secret](t, objs, "talim-secrets")
		keys := map[string]bool{}
		for k := range s.Data {
			keys[k] = true
		}
		for k, v := range s.StringData {
			keys[k] = true
			if rel == "base" && !strings.Contains(v, "CHANGE-ME") {
				t.Errorf("base Secret value %s must be a CHANGE-ME placeholder", k)
			}
		}
		for k := range keys {
			if !envAllowed("", k) {
				t.Errorf("%s: Secret key %s is not in knownEnv", rel, k)
			}
		}
		for _, k := range []string{"TALIM_JWT_SECRET", "TALIM_SERVICE_TOKEN", "MONGODB_URI",
			"EDGE_NATS_PASSWORD", "CHAT_NATS_PASSWORD", "NOTIFICATION_NATS_PASSWORD",
			"PRESENCE_NATS_PASSWORD", "ADMIN_NATS_PASSWORD"} {
			if !keys[k] {
				t.Errorf("%s: Secret lacks %s", rel, k)
			}
		}
		cm := mustFind[*corev1.ConfigMap](t, objs, "talim-config")
		for k := range cm.Data {
			if !envAllowed("", k) {
				t.Errorf("%s: ConfigMap key %s is not in knownEnv", rel, k)
			}
		}
		if cm.Data["TALIM_LOG_FORMAT"] != "json" {
			t.Errorf("%s: want JSON logs", rel)
		}
	}
	// prod: the generated Secret carries the replica-set URI.
	s := mustFind[*corev1.Secret](t, render(t, "overlays/prod"), "talim-secrets")
	uri := string(s.Data["MONGODB_URI"])
	for _, want := range []string{"mongo-0.mongo:27017", "mongo-1.mongo:27017", "mongo-2.mongo:27017", "replicaSet=rs0"} {
		if !strings.Contains(uri, want) {
			t.Errorf("prod MONGODB_URI %q lacks %q", uri, want)
		}
	}
}

func TestServicesRouteToDeclaredPorts(t *testing.T) {
	for _, rel := range []string{"base", "overlays/dev", "overlays/prod"} {
		objs := render(t, rel)
		pods := map[string]corev1.PodTemplateSpec{}
		for _, d := range all[*appsv1.Deployment](objs) {
			pods[d.Name] = d.Spec.Template
		}
		for _, s := range all[*appsv1.StatefulSet](objs) {
			pods[s.Name] = s.Spec.Template
		}
		for _, svc := range all[*corev1.Service](objs) {
			var tmpl *corev1.PodTemplateSpec
			for n, p := range pods {
				if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(p.Labels)) {
					p := p
					tmpl = &p
					_ = n
				}
			}
			if tmpl == nil {
				t.Errorf("%s: Service %s selects no pods", rel, svc.Name)
				continue
			}
			for _, sp := range svc.Spec.Ports {
				found := false
				for _, cp := range tmpl.Spec.Containers[0].Ports {
					if sp.TargetPort.Type == intstr.String && cp.Name == sp.TargetPort.StrVal ||
						sp.TargetPort.Type == intstr.Int && cp.ContainerPort == sp.TargetPort.IntVal {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: Service %s port %s targets %s, not a container port", rel, svc.Name, sp.Name, sp.TargetPort.String())
				}
				if sp.Name == "grpc" && (sp.AppProtocol == nil || *sp.AppProtocol != "grpc") {
					t.Errorf("%s: Service %s grpc port needs appProtocol grpc", rel, svc.Name)
				}
			}
		}
		for _, name := range serviceNames {
			svc := mustFind[*corev1.Service](t, objs, name)
			if svc.Labels["talim.io/metrics"] != "true" {
				t.Errorf("%s: Service %s is not selected by the ServiceMonitor", rel, name)
			}
		}
		ing := mustFind[*networkingv1.Ingress](t, objs, "edge")
		sio := mustFind[*networkingv1.Ingress](t, objs, "edge-socketio")
		for _, in := range []*networkingv1.Ingress{ing, sio} {
			for _, a := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
				if in.Annotations[a] != "3600" {
					t.Errorf("%s: Ingress %s %s = %q, want 3600", rel, in.Name, a, in.Annotations[a])
				}
			}
		}
		// Affinity for Socket.IO long-polling only (docs/socketio.md); /ws stays non-sticky.
		if a := ing.Annotations["nginx.ingress.kubernetes.io/affinity"]; a != "" {
			t.Errorf("%s: Ingress edge has affinity %q: the native /ws path must stay non-sticky", rel, a)
		}
		if sio.Annotations["nginx.ingress.kubernetes.io/affinity"] != "cookie" ||
			sio.Annotations["nginx.ingress.kubernetes.io/session-cookie-path"] != "/socket.io/" {
			t.Errorf("%s: Ingress edge-socketio needs cookie affinity on /socket.io/: %v", rel, sio.Annotations)
		}
		for _, r := range sio.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				if p.Path != "/socket.io/" {
					t.Errorf("%s: Ingress edge-socketio routes %q: only /socket.io/ may be sticky", rel, p.Path)
				}
			}
		}
		if len(sio.Spec.Rules) != len(ing.Spec.Rules) || len(sio.Spec.Rules) > 0 && sio.Spec.Rules[0].Host != ing.Spec.Rules[0].Host {
			t.Errorf("%s: Ingress edge-socketio and edge must serve the same host", rel)
		}
		for _, pdb := range all[*policyv1.PodDisruptionBudget](objs) {
			sel, _ := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			matched := false
			for _, p := range pods {
				matched = matched || sel.Matches(labels.Set(p.Labels))
			}
			if !matched {
				t.Errorf("%s: PDB %s selects no pods", rel, pdb.Name)
			}
		}
	}
}

func TestAutoscaling(t *testing.T) {
	for _, rel := range []string{"base", "overlays/prod"} {
		objs := render(t, rel)
		hpas := map[string]*autoscalingv2.HorizontalPodAutoscaler{}
		for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](objs) {
			hpas[h.Name] = h
			if _, ok := find[*appsv1.Deployment](objs, h.Spec.ScaleTargetRef.Name); !ok || h.Spec.ScaleTargetRef.Kind != "Deployment" {
				t.Errorf("%s: HPA %s targets missing %s", rel, h.Name, h.Spec.ScaleTargetRef.Name)
			}
			if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
				t.Errorf("%s: HPA %s bounds are wrong", rel, h.Name)
			}
		}
		for _, n := range []string{"edge", "chat", "notification"} {
			if hpas[n] == nil {
				t.Errorf("%s: no HPA for %s", rel, n)
			}
		}
		if hpas["presence"] != nil {
			t.Errorf("%s: presence runs a fixed replica count", rel)
		}
		edge := hpas["edge"]
		if edge == nil {
			continue
		}
		var cpu, conns bool
		for _, m := range edge.Spec.Metrics {
			switch {
			case m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource.Name == corev1.ResourceCPU:
				cpu = true
			case m.Type == autoscalingv2.PodsMetricSourceType && m.Pods.Metric.Name == "talim_edge_connections":
				conns = m.Pods.Target.AverageValue != nil && m.Pods.Target.AverageValue.Value() > 0
			}
		}
		if !cpu || !conns {
			t.Errorf("%s: edge HPA must scale on CPU and talim_edge_connections", rel)
		}
	}
	dev := render(t, "overlays/dev")
	if n := len(all[*autoscalingv2.HorizontalPodAutoscaler](dev)); n != 0 {
		t.Errorf("dev has %d HPAs", n)
	}
	for _, d := range all[*appsv1.Deployment](dev) {
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("dev: %s must run 1 replica", d.Name)
		}
	}
	prod := render(t, "overlays/prod")
	for name, want := range map[string]int32{"edge": 4, "chat": 3, "notification": 2, "presence": 2} {
		if d := mustFind[*appsv1.Deployment](t, prod, name); *d.Spec.Replicas != want {
			t.Errorf("prod: %s replicas %d, want %d", name, *d.Spec.Replicas, want)
		}
		if d := mustFind[*appsv1.Deployment](t, prod, name); !strings.HasPrefix(d.Spec.Template.Spec.Containers[0].Image, "registry.example.com/talim/"+name+":") {
			t.Errorf("prod: %s image %s", name, d.Spec.Template.Spec.Containers[0].Image)
		}
	}
}

func TestNetworkPolicies(t *testing.T) {
	objs := render(t, "base")
	deny := mustFind[*networkingv1.NetworkPolicy](t, objs, "default-deny")
	if len(deny.Spec.PodSelector.MatchLabels)+len(deny.Spec.PodSelector.MatchExpressions) != 0 ||
		len(deny.Spec.Ingress)+len(deny.Spec.Egress) != 0 || len(deny.Spec.PolicyTypes) != 2 {
		t.Error("default-deny must select every pod and deny ingress and egress")
	}
	edge := mustFind[*networkingv1.NetworkPolicy](t, objs, "edge")
	var open8080 bool
	for _, r := range edge.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port.IntValue() == 8080 && len(r.From) == 0 {
				open8080 = true
			}
		}
	}
	if !open8080 {
		t.Error("edge must accept 8080 from anywhere")
	}
	grpc := mustFind[*networkingv1.NetworkPolicy](t, objs, "grpc-services")
	if len(grpc.Spec.Ingress) != 1 || len(grpc.Spec.Ingress[0].From) != 1 ||
		grpc.Spec.Ingress[0].From[0].PodSelector.MatchLabels["talim.io/grpc-client"] != "true" ||
		grpc.Spec.Ingress[0].From[0].NamespaceSelector != nil || grpc.Spec.Ingress[0].Ports[0].Port.IntValue() != 9090 {
		t.Error("gRPC must be reachable only from pods of the namespace labelled talim.io/grpc-client=true")
	}
	// Egress ports of service pods: NATS, MongoDB, DNS and nothing else.
	allowed := map[int]bool{4222: true, 27017: true, 53: true}
	for _, np := range all[*networkingv1.NetworkPolicy](objs) {
		for _, r := range np.Spec.Egress {
			if len(r.Ports) == 0 {
				t.Errorf("NetworkPolicy %s has an egress rule for every port", np.Name)
			}
			for _, p := range r.Ports {
				if !allowed[p.Port.IntValue()] && !(np.Name == "nats" && p.Port.IntValue() == 6222) {
					t.Errorf("NetworkPolicy %s allows egress to port %d", np.Name, p.Port.IntValue())
				}
			}
		}
	}
}

func TestMonitoring(t *testing.T) {
	for _, rel := range []string{"base", "overlays/prod"} {
		objs := render(t, rel)
		sm := mustFind[*monitoringv1.ServiceMonitor](t, objs, "talim")
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range serviceNames {
			svc := mustFind[*corev1.Service](t, objs, name)
			if !sel.Matches(labels.Set(svc.Labels)) {
				t.Errorf("%s: ServiceMonitor does not select Service %s", rel, name)
			}
		}
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "admin" {
			t.Errorf("%s: ServiceMonitor must scrape the admin port", rel)
		}
		pr := mustFind[*monitoringv1.PrometheusRule](t, objs, "talim")
		var exprs strings.Builder
		alerts := map[string]bool{}
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				if r.Record != "" && r.Expr.String() != "" {
					continue // recording rules (SLOs): checked in TestRules
				}
				if r.Alert == "" || r.Expr.String() == "" || r.Labels["severity"] == "" {
					t.Errorf("%s: incomplete rule %+v", rel, r)
				}
				alerts[r.Alert] = true
				exprs.WriteString(r.Expr.String() + "\n")
			}
		}
		for _, m := range contractMetrics {
			if !strings.Contains(exprs.String(), m) {
				t.Errorf("%s: no alert uses %s", rel, m)
			}
		}
		doc, err := os.ReadFile(filepath.Join("..", "docs", "operations.md"))
		if err != nil {
			t.Fatal(err)
		}
		for a := range alerts {
			if !strings.Contains(string(doc), "### "+a) {
				t.Errorf("docs/operations.md has no section for alert %s", a)
			}
		}
	}
	if n := len(all[*monitoringv1.ServiceMonitor](render(t, "overlays/dev"))) + len(all[*monitoringv1.PrometheusRule](render(t, "overlays/dev"))); n != 0 {
		t.Errorf("dev renders %d Prometheus Operator objects", n)
	}
}

func TestNATSStatefulSet(t *testing.T) {
	conf, err := os.ReadFile(filepath.Join("nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"base", "overlays/dev", "overlays/prod"} {
		objs := render(t, rel)
		sts := mustFind[*appsv1.StatefulSet](t, objs, "nats")
		if *sts.Spec.Replicas != 3 || sts.Spec.ServiceName != "nats-headless" {
			t.Errorf("%s: nats must be 3 pods behind nats-headless", rel)
		}
		var cmName string
		for _, v := range sts.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
		cm := mustFind[*corev1.ConfigMap](t, objs, "nats-config")
		if cm.Name != cmName {
			t.Errorf("%s: StatefulSet mounts ConfigMap %q, generated one is %q", rel, cmName, cm.Name)
		}
		if cm.Data["nats.conf"] != string(conf) {
			t.Errorf("%s: nats-config differs from deploy/nats/nats.conf", rel)
		}
		hl := mustFind[*corev1.Service](t, objs, "nats-headless")
		if hl.Spec.ClusterIP != corev1.ClusterIPNone || !hl.Spec.PublishNotReadyAddresses {
			t.Errorf("%s: nats-headless must be headless and publish not-ready addresses", rel)
		}
		// Every $VAR in nats.conf is provided by the container.
		env := map[string]bool{}
		for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
			env[e.Name] = true
		}
		for _, v := range confVars(string(conf)) {
			if !env[v] {
				t.Errorf("%s: nats.conf uses $%s but the nats container does not set it", rel, v)
			}
		}
	}
}

func TestMongoReference(t *testing.T) {
	objs := render(t, "mongodb")
	sts := mustFind[*appsv1.StatefulSet](t, objs, "mongo")
	if *sts.Spec.Replicas != 3 || !slices.Contains(sts.Spec.Template.Spec.Containers[0].Args, "rs0") {
		t.Error("mongo must be a 3-member replica set rs0")
	}
	job := mustFind[*batchv1.Job](t, objs, "mongo-rs-init")
	c := job.Spec.Template.Spec.Containers[0]
	checkContainerEnv(t, objs, "init", c)
	if c.Env[0].Name != "MONGO_REPLICAS" || c.Env[0].Value != "3" {
		t.Error("init Job must initiate as many members as the StatefulSet has")
	}
	dev := render(t, "overlays/dev")
	if j := mustFind[*batchv1.Job](t, dev, "mongo-rs-init"); j.Spec.Template.Spec.Containers[0].Env[0].Value != "1" {
		t.Error("dev initiates a one-member replica set")
	}
	if s := mustFind[*appsv1.StatefulSet](t, dev, "mongo"); *s.Spec.Replicas != 1 {
		t.Error("dev runs one mongo pod")
	}
	if _, ok := find[*appsv1.StatefulSet](render(t, "base"), "mongo"); ok {
		t.Error("MongoDB must stay out of the base")
	}
}
