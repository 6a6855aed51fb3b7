package deploy

import (
	"net"
	"strconv"
	"testing"

	"github.com/talim/realtime/pkg/config"
	"github.com/talim/realtime/pkg/service"
	"github.com/talim/realtime/services/chat"
	"github.com/talim/realtime/services/edge"
	"github.com/talim/realtime/services/notification"
	"github.com/talim/realtime/services/presence"
)

// knownEnv is the allow-list of environment variable names per container. Every
// name set in a container's `env`, in compose.yaml's `environment`, or as a key of
// the ConfigMap talim-config / Secret talim-secrets must appear here (ConfigMap and
// Secret keys may belong to any component: they are shared through envFrom).
//
// The services' entries come from their real configuration (each Config.Register
// plus the logging variables every main registers), so a manifest cannot set a
// variable the binary does not read.
var knownEnv = map[string][]string{
	"edge":         serviceEnv(new(edge.Config).Register),
	"chat":         serviceEnv(new(chat.Config).Register),
	"notification": serviceEnv(new(notification.Config).Register),
	"presence":     serviceEnv(new(presence.Config).Register),
	// The NATS server: variables referenced by deploy/nats/nats.conf.
	"nats": {
		"POD_NAME",
		"EDGE_NATS_PASSWORD", "CHAT_NATS_PASSWORD", "NOTIFICATION_NATS_PASSWORD",
		"PRESENCE_NATS_PASSWORD", "ADMIN_NATS_PASSWORD",
		"GOMEMLIMIT",
	},
	// deploy/k8s/mongodb init Job.
	"init": {"MONGO_REPLICAS"},
}

// runtimeEnv are read by the Go runtime, not by our configuration.
var runtimeEnv = []string{"GOMEMLIMIT", "GOMAXPROCS"}

// serviceVars lists a service's configuration variables with their defaults.
func serviceVars(register func(*config.Set)) []config.Var {
	set := config.NewSet(nil, func(string) (string, bool) { return "", false })
	var lg service.Log
	lg.Register(set, "json")
	register(set)
	return set.Vars()
}

func serviceEnv(register func(*config.Set)) []string {
	names := append([]string(nil), runtimeEnv...)
	for _, v := range serviceVars(register) {
		names = append(names, v.Env)
	}
	return names
}

// envAllowed reports whether name is allowed for container (any container when
// container is "").
func envAllowed(container, name string) bool {
	for c, names := range knownEnv {
		if container != "" && c != container {
			continue
		}
		for _, n := range names {
			if n == name {
				return true
			}
		}
	}
	return false
}

// TestServicePorts_MatchConfigDefaults ties the ports the manifests declare (and the
// probes use) to the defaults the binaries actually listen on.
func TestServicePorts_MatchConfigDefaults(t *testing.T) {
	t.Parallel()
	regs := map[string]func(*config.Set){
		"edge": new(edge.Config).Register, "chat": new(chat.Config).Register,
		"notification": new(notification.Config).Register, "presence": new(presence.Config).Register,
	}
	portOf := map[string]string{"TALIM_ADMIN_ADDR": "admin", "TALIM_EDGE_ADDR": "http", "TALIM_GRPC_ADDR": "grpc"}
	for name, reg := range regs {
		found := map[string]bool{}
		for _, v := range serviceVars(reg) {
			portName, ok := portOf[v.Env]
			if !ok {
				continue
			}
			_, port, err := net.SplitHostPort(v.Default)
			if err != nil {
				t.Fatalf("%s %s default %q: %v", name, v.Env, v.Default, err)
			}
			want := servicePorts[name][portName]
			if strconv.Itoa(int(want)) != port {
				t.Errorf("%s: %s defaults to port %s but the manifests declare %s=%d", name, v.Env, port, portName, want)
			}
			found[portName] = true
		}
		for portName := range servicePorts[name] {
			if !found[portName] {
				t.Errorf("%s: manifests declare port %s but the service has no listen address for it", name, portName)
			}
		}
	}
}
