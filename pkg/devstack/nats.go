package devstack

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReadyTimeout bounds how long StartNATS waits for the server to accept
// client (and, when clustered, route) connections.
const natsReadyTimeout = 10 * time.Second

// RandomPort asks a server to pick a free port (NATS semantics: -1).
const RandomPort = -1

// NATSOptions configures StartNATS. The zero value starts a standalone server
// on 127.0.0.1:4222 with no authentication.
type NATSOptions struct {
	// Host is the client listen host. Empty means the host from ConfigFile,
	// or 127.0.0.1 when that is empty too.
	Host string
	// Port is the client port: 0 means the port from ConfigFile or the NATS
	// default 4222, RandomPort (-1) picks a free port.
	Port int
	// ConfigFile optionally names a nats.conf (users, permissions,
	// accounts, ...) loaded with server.ProcessConfigFile. Host, Port and
	// Cluster from these options override the file when they are set.
	ConfigFile string
	// ServerName optionally names the server (useful in clusters and logs).
	ServerName string
	// Cluster, when non-nil, enables routing so that several in-process
	// servers form a cluster.
	Cluster *NATSClusterOptions
	// Logger receives the server's notices, warnings and errors (notices are
	// logged at debug level). Nil discards them.
	Logger *slog.Logger
}

// NATSClusterOptions configures the cluster (route) listener of a server.
type NATSClusterOptions struct {
	// Name is the cluster name; all nodes of a cluster must use the same one.
	Name string
	// Host is the route listen host; empty means the client Host.
	Host string
	// Port is the route listen port; 0 or RandomPort picks a free port.
	Port int
	// Routes are the seed routes of other nodes, e.g.
	// "nats-route://127.0.0.1:6222" (see (*NATS).ClusterURL).
	Routes []string
}

// NATS is a running in-process NATS server.
type NATS struct {
	srv  *server.Server
	url  string
	once sync.Once
}

// StartNATS starts an in-process NATS server and waits until it accepts
// connections (and routes, when clustered).
func StartNATS(opts NATSOptions) (*NATS, error) {
	sopts, err := natsServerOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("start nats: new server: %w", err)
	}
	if opts.Logger != nil {
		srv.SetLoggerV2(natsLogger{l: opts.Logger.With("component", "nats-server")}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(natsReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start nats: server not ready for connections after %s", natsReadyTimeout)
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok || addr == nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("start nats: server has no TCP client listener")
	}
	n := &NATS{srv: srv, url: "nats://" + net.JoinHostPort(dialHost(addr.IP), strconv.Itoa(addr.Port))}
	return n, nil
}

func natsServerOptions(opts NATSOptions) (*server.Options, error) {
	sopts := &server.Options{}
	if opts.ConfigFile != "" {
		fo, err := server.ProcessConfigFile(opts.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("load config %s: %w", opts.ConfigFile, err)
		}
		sopts = fo
	}
	switch {
	case opts.Host != "":
		sopts.Host = opts.Host
	case sopts.Host == "":
		sopts.Host = "127.0.0.1"
	}
	if opts.Port != 0 {
		sopts.Port = opts.Port
	}
	if opts.ServerName != "" {
		sopts.ServerName = opts.ServerName
	}
	if sopts.MaxPayload == 0 {
		// An edge heartbeat lists every live connection (~50 bytes each); ~20,000
		// connections per edge pass NATS's 1 MiB default. deploy/nats/nats.conf says the same.
		sopts.MaxPayload = 8 << 20
	}
	sopts.NoLog = true
	sopts.NoSigs = true
	sopts.JetStream = false
	if c := opts.Cluster; c != nil {
		if c.Name != "" {
			sopts.Cluster.Name = c.Name
		}
		switch {
		case c.Host != "":
			sopts.Cluster.Host = c.Host
		case sopts.Cluster.Host == "":
			sopts.Cluster.Host = sopts.Host
		}
		switch {
		case c.Port != 0:
			sopts.Cluster.Port = c.Port
		case sopts.Cluster.Port == 0:
			sopts.Cluster.Port = RandomPort
		}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("parse route %q: %w", r, err)
			}
			sopts.Routes = append(sopts.Routes, u)
		}
	}
	return sopts, nil
}

// dialHost turns a listen IP into a host that clients can dial:
// unspecified addresses (0.0.0.0, ::) become 127.0.0.1.
func dialHost(ip net.IP) string {
	if ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return ip.String()
}

// ClientURL returns the nats:// URL clients use to connect to this server.
func (n *NATS) ClientURL() string { return n.url }

// ClusterURL returns the nats-route:// URL other nodes use as a route to
// this server, or "" when clustering is not enabled.
func (n *NATS) ClusterURL() string {
	addr := n.srv.ClusterAddr()
	if addr == nil {
		return ""
	}
	return "nats-route://" + net.JoinHostPort(dialHost(addr.IP), strconv.Itoa(addr.Port))
}

// Server returns the underlying nats-server instance (for inspection in
// tests: NumRoutes, NumSubscriptions, ...).
func (n *NATS) Server() *server.Server { return n.srv }

// Shutdown stops the server and waits until it has shut down. It is safe to
// call more than once and from several goroutines.
func (n *NATS) Shutdown() {
	n.once.Do(func() {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	})
}

// natsLogger adapts *slog.Logger to server.Logger.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Debugf(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Tracef(format string, v ...any)  { n.l.Debug(fmt.Sprintf(format, v...)) }
