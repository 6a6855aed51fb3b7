package deploy

// knownEnv is the allow-list of environment variable names per container. Every
// name set in a container's `env`, in compose.yaml's `environment`, or as a key of
// the ConfigMap talim-config / Secret talim-secrets must appear here (ConfigMap and
// Secret keys may belong to any component: they are shared through envFrom).
//
// Service entries mirror docs/CONTRACTS.md "Configuration"; replace them with the
// services' real config lists (config.Set.Vars()) when those exist.
var knownEnv = map[string][]string{
	"edge": {
		"NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CREDS",
		"TALIM_LOG_FORMAT", "TALIM_LOG_LEVEL", "TALIM_ADMIN_ADDR",
		"TALIM_EDGE_ADDR", "TALIM_EDGE_DRAIN_WINDOW", "TALIM_EDGE_ALLOWED_ORIGINS",
		"TALIM_JWT_SECRET", "TALIM_JWT_JWKS", "TALIM_JWT_ISSUER", "TALIM_JWT_AUDIENCE",
		"TALIM_DEV_MODE",
		"GOMEMLIMIT", "GOMAXPROCS",
	},
	"chat": {
		"NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CREDS",
		"MONGODB_URI", "MONGODB_DATABASE",
		"TALIM_LOG_FORMAT", "TALIM_LOG_LEVEL", "TALIM_ADMIN_ADDR",
		"TALIM_GRPC_ADDR", "TALIM_SERVICE_TOKEN",
		"GOMEMLIMIT", "GOMAXPROCS",
	},
	"notification": {
		"NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CREDS",
		"MONGODB_URI", "MONGODB_DATABASE",
		"TALIM_LOG_FORMAT", "TALIM_LOG_LEVEL", "TALIM_ADMIN_ADDR",
		"TALIM_GRPC_ADDR", "TALIM_SERVICE_TOKEN",
		"GOMEMLIMIT", "GOMAXPROCS",
	},
	"presence": {
		"NATS_URL", "NATS_USER", "NATS_PASSWORD", "NATS_CREDS",
		"MONGODB_URI", "MONGODB_DATABASE",
		"TALIM_LOG_FORMAT", "TALIM_LOG_LEVEL", "TALIM_ADMIN_ADDR",
		"GOMEMLIMIT", "GOMAXPROCS",
	},
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
