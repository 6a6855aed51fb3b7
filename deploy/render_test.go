package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// object is one rendered manifest decoded into its Go type.
type object struct {
	GVK  schema.GroupVersionKind
	Name string
	Obj  runtime.Object
	YAML []byte
}

var (
	decoderOnce sync.Once
	strictCodec *kjson.Serializer
)

// strictDecoder decodes YAML into the typed objects of client-go's scheme plus the
// Prometheus Operator's monitoring.coreos.com/v1, rejecting unknown and duplicate
// fields.
func strictDecoder() *kjson.Serializer {
	decoderOnce.Do(func() {
		s := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(s); err != nil {
			panic(err)
		}
		if err := monitoringv1.AddToScheme(s); err != nil {
			panic(err)
		}
		strictCodec = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s,
			kjson.SerializerOptions{Yaml: true, Strict: true})
	})
	return strictCodec
}

// decodeStrict decodes one YAML document; any unknown field is an error.
func decodeStrict(doc []byte) (runtime.Object, *schema.GroupVersionKind, error) {
	return strictDecoder().Decode(doc, nil, nil)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if treeDir != "" {
		_ = os.RemoveAll(treeDir)
	}
	os.Exit(code)
}

var (
	treeOnce sync.Once
	treeDir  string
	treeErr  error
)

// renderTree returns a private copy of deploy/k8s, deploy/nats and deploy/grafana (kustomize reads
// files relative to each kustomization) in which overlays/prod/secrets.env exists,
// made from secrets.env.example as an operator would.
func renderTree(t *testing.T) string {
	t.Helper()
	treeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "talim-deploy-*")
		if err != nil {
			treeErr = err
			return
		}
		for _, sub := range []string{"k8s", "nats", "grafana"} {
			if err := copyTree(sub, filepath.Join(dir, sub)); err != nil {
				treeErr = err
				return
			}
		}
		prod := filepath.Join(dir, "k8s", "overlays", "prod")
		example, err := os.ReadFile(filepath.Join(prod, "secrets.env.example"))
		if err != nil {
			treeErr = err
			return
		}
		treeErr = os.WriteFile(filepath.Join(prod, "secrets.env"), example, 0o600)
		treeDir = dir
	})
	if treeErr != nil {
		t.Fatalf("prepare render tree: %v", treeErr)
	}
	return treeDir
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if d.Name() == "secrets.env" { // a real secrets file never leaves its place
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// kustomizeBuild renders the kustomization in dir with the kustomize Go API, from the
// disk, with no network (no remote bases, no Helm charts).
func kustomizeBuild(dir string) ([]object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []object
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		obj, gvk, err := decodeStrict(y)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
		}
		out = append(out, object{GVK: *gvk, Name: r.GetName(), Obj: obj, YAML: y})
	}
	return out, nil
}

var (
	renderMu    sync.Mutex
	renderCache = map[string][]object{}
)

// render builds deploy/k8s/<rel> (cached per test binary) and fails the test on any
// rendering or strict decoding error.
func render(t *testing.T, rel string) []object {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	if objs, ok := renderCache[rel]; ok {
		return objs
	}
	objs, err := kustomizeBuild(filepath.Join(renderTree(t), "k8s", rel))
	if err != nil {
		t.Fatal(err)
	}
	renderCache[rel] = objs
	return objs
}

// all returns the typed objects of type T.
func all[T runtime.Object](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// find returns the object of type T whose name is name, or name plus a kustomize
// hash suffix.
func find[T runtime.Object](objs []object, name string) (T, bool) {
	var zero T
	for _, o := range objs {
		v, ok := o.Obj.(T)
		if !ok {
			continue
		}
		if o.Name == name || strings.HasPrefix(o.Name, name+"-") && len(o.Name) == len(name)+11 {
			return v, true
		}
	}
	return zero, false
}

func mustFind[T runtime.Object](t *testing.T, objs []object, name string) T {
	t.Helper()
	v, ok := find[T](objs, name)
	if !ok {
		var zero T
		t.Fatalf("no %T named %q rendered", zero, name)
	}
	return v
}
