// Package service holds what every Talim service process shares: the common
// configuration (NATS, MongoDB, logging, admin address), instance ids and the build
// version.
package service

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/talim/realtime/pkg/config"
)

// Version is the build version, set with -ldflags "-X github.com/talim/realtime/pkg/service.Version=v1.2.3".
var Version = "dev"

// NATS is the NATS connection configuration.
type NATS struct {
	URL, User, Password, Creds string
}

// Register binds the NATS variables.
func (n *NATS) Register(s *config.Set) {
	s.URL(&n.URL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated", true, "nats", "tls", "ws", "wss")
	s.String(&n.User, "nats-user", "NATS_USER", "", "NATS user name")
	s.String(&n.Password, "nats-password", "NATS_PASSWORD", "", "NATS password")
	s.String(&n.Creds, "nats-creds", "NATS_CREDS", "", "path to a NATS .creds file")
}

// Mongo is the MongoDB configuration.
type Mongo struct {
	URI, Database string
}

// Register binds the MongoDB variables.
func (m *Mongo) Register(s *config.Set) {
	s.URL(&m.URI, "mongodb-uri", "MONGODB_URI", "mongodb://127.0.0.1:27017", "MongoDB connection string", false, "mongodb", "mongodb+srv")
	s.String(&m.Database, "mongodb-database", "MONGODB_DATABASE", "talim", "MongoDB database name")
}

// Log is the logging configuration.
type Log struct {
	Format, Level string
}

// Register binds the logging variables.
func (l *Log) Register(s *config.Set, defFormat string) {
	s.String(&l.Format, "log-format", "TALIM_LOG_FORMAT", defFormat, "log format: json or text")
	s.String(&l.Level, "log-level", "TALIM_LOG_LEVEL", "info", "log level: debug, info, warn, error")
}

// InstanceID returns "<service>-<hostname>-<random>", unique per process.
func InstanceID(service string) string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	if host == "" {
		host = "local"
	}
	return fmt.Sprintf("%s-%s-%s", service, host, hex.EncodeToString(b[:]))
}

// RandomToken returns n random bytes hex-encoded (secrets generated in dev mode).
func RandomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
