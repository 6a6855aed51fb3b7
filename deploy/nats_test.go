package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsPerm is what docs/CONTRACTS.md gives one NATS user.
type natsPerm struct {
	pub, sub  []string
	responses bool
}

// contractPerms: derived by hand from the subject table in docs/CONTRACTS.md. The
// users in deploy/nats/nats.conf must match this EXACTLY (no extra subject).
var contractPerms = map[string]natsPerm{
	"edge": {
		pub: []string{"talim.cmd.v1.>", "talim.presence.v1.conn.>", "talim.presence.v1.heartbeat.>", "talim.health.v1.>"},
		sub: []string{"talim.user.v1.>", "talim.presence.v1.changed.>", "talim.health.v1.edge", "_INBOX.>"},
		// replies to talim.health.v1.edge
		responses: true,
	},
	"chat": {
		pub: []string{"talim.user.v1.>", "talim.chat.v1.membership.>", "talim.chat.v1.policy-changed",
			"talim.notification.v1.chat-push", "talim.records.v1.>"},
		sub: []string{"talim.cmd.v1.chat.>", "talim.chat.v1.membership.>", "talim.chat.v1.shared-rooms",
			"talim.chat.v1.policy-changed", "talim.chat.v1.unread-direct", "talim.health.v1.chat", "_INBOX.>"},
		responses: true,
	},
	"notification": {
		pub: []string{"talim.user.v1.>", "talim.presence.v1.query", "talim.chat.v1.unread-direct"},
		sub: []string{"talim.cmd.v1.notification.>", "talim.health.v1.notification", "talim.notification.v1.chat-push",
			"talim.records.v1.notification.>", "_INBOX.>"},
		responses: true,
	},
	"presence": {
		pub: []string{"talim.presence.v1.changed.>", "talim.presence.v1.internal.>", "talim.chat.v1.shared-rooms"},
		sub: []string{"talim.cmd.v1.presence.>", "talim.presence.v1.conn.>", "talim.presence.v1.heartbeat.>",
			"talim.presence.v1.query", "talim.presence.v1.internal.>", "talim.chat.v1.membership.>", "talim.health.v1.presence",
			"talim.records.v1.presence.>", "_INBOX.>"},
		responses: true,
	},
	"talim-admin": {
		pub: []string{"talim.health.v1.>", "talim.presence.v1.query"},
		sub: []string{">"},
	},
}

// passwordEnv names the environment variable holding each user's password.
var passwordEnv = map[string]string{
	"edge": "EDGE_NATS_PASSWORD", "chat": "CHAT_NATS_PASSWORD",
	"notification": "NOTIFICATION_NATS_PASSWORD", "presence": "PRESENCE_NATS_PASSWORD",
	"talim-admin": "ADMIN_NATS_PASSWORD",
}

var confVarRe = regexp.MustCompile(`\$([A-Z_][A-Z0-9_]*)`)

// confVars lists the $VARIABLES nats.conf takes from the environment.
func confVars(conf string) []string {
	var out []string
	for _, line := range strings.Split(conf, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		for _, m := range confVarRe.FindAllStringSubmatch(line, -1) {
			if !slices.Contains(out, m[1]) {
				out = append(out, m[1])
			}
		}
	}
	slices.Sort(out)
	return out
}

// setNATSEnv provides every variable of nats.conf; passwords are "pw-<VAR>".
func setNATSEnv(t *testing.T) {
	t.Setenv("POD_NAME", "nats-test-0")
	for _, v := range passwordEnv {
		t.Setenv(v, "pw-"+v)
	}
}

// stripBlock removes the top-level `name { ... }` block from a NATS config.
func stripBlock(conf, name string) (string, error) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s*\{`)
	loc := re.FindStringIndex(conf)
	if loc == nil {
		return "", fmt.Errorf("no %s block", name)
	}
	depth := 0
	for i := loc[1] - 1; i < len(conf); i++ {
		switch conf[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return conf[:loc[0]] + conf[i+1:], nil
			}
		}
	}
	return "", fmt.Errorf("unbalanced %s block", name)
}

func loadConf(t *testing.T) (string, *server.Options) {
	t.Helper()
	setNATSEnv(t)
	path := filepath.Join("nats", "nats.conf")
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), opts
}

func TestNATSConfParses(t *testing.T) {
	_, opts := loadConf(t)
	if opts.Cluster.Name != "talim" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3 {
		t.Fatalf("cluster: name %q port %d routes %v", opts.Cluster.Name, opts.Cluster.Port, opts.Routes)
	}
	for i, r := range opts.Routes {
		if want := fmt.Sprintf("nats-%d.nats-headless:6222", i); r.Host != want {
			t.Errorf("route %d is %s, want %s", i, r.Host, want)
		}
	}
	if opts.Port != 4222 || opts.HTTPPort != 8222 || opts.ServerName != "nats-test-0" {
		t.Errorf("ports %d/%d name %q", opts.Port, opts.HTTPPort, opts.ServerName)
	}
}

// The users and permissions in nats.conf are exactly the contract's.
func TestNATSConfPermissionsMatchContract(t *testing.T) {
	_, opts := loadConf(t)
	if len(opts.Users) != len(contractPerms) {
		t.Errorf("nats.conf has %d users, contract %d", len(opts.Users), len(contractPerms))
	}
	for _, u := range opts.Users {
		want, ok := contractPerms[u.Username]
		if !ok {
			t.Errorf("unexpected user %s", u.Username)
			continue
		}
		if u.Password != "pw-"+passwordEnv[u.Username] {
			t.Errorf("%s: password must come from $%s", u.Username, passwordEnv[u.Username])
		}
		p := u.Permissions
		if p == nil || p.Publish == nil || p.Subscribe == nil {
			t.Errorf("%s: needs explicit publish and subscribe permissions", u.Username)
			continue
		}
		if len(p.Publish.Deny)+len(p.Subscribe.Deny) != 0 {
			t.Errorf("%s: use allow lists only", u.Username)
		}
		if !sameSet(p.Publish.Allow, want.pub) {
			t.Errorf("%s: publish %v, contract %v", u.Username, p.Publish.Allow, want.pub)
		}
		if !sameSet(p.Subscribe.Allow, want.sub) {
			t.Errorf("%s: subscribe %v, contract %v", u.Username, p.Subscribe.Allow, want.sub)
		}
		if (p.Response != nil) != want.responses {
			t.Errorf("%s: allow_responses %v, contract %v", u.Username, p.Response != nil, want.responses)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// startNATS runs nats.conf in-process: the cluster block is removed (no routes to
// resolve), the client port is random and monitoring and the pid file are off.
func startNATS(t *testing.T) string {
	t.Helper()
	conf, _ := loadConf(t)
	single, err := stripBlock(conf, "cluster")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	write(t, path, single)
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host = "127.0.0.1"
	opts.Port = server.RANDOM_PORT
	opts.HTTPPort = 0
	opts.PidFile = ""
	opts.NoSigs = true
	opts.NoLog = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// client is one user's connection; asyncErrs receives what the error handler sees.
type client struct {
	*nats.Conn
	user      string
	asyncErrs chan error
}

func connect(t *testing.T, url, user string) *client {
	t.Helper()
	c := &client{user: user, asyncErrs: make(chan error, 16)}
	nc, err := nats.Connect(url,
		nats.Name("test-"+user),
		nats.UserInfo(user, "pw-"+passwordEnv[user]),
		nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.asyncErrs <- err
		}),
	)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c
}

// roundTrip flushes (PING/PONG): the server handles our earlier PUB/SUB before the
// PING, and its -ERR for them arrives before the PONG, so after Flush LastError is
// final for everything sent so far. No sleeping.
func (c *client) roundTrip(t *testing.T) error {
	t.Helper()
	if err := c.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("%s: flush: %v", c.user, err)
	}
	return c.LastError()
}

// op is a publish ("pub") or subscribe ("sub") on a concrete subject.
type op struct{ kind, subject string }

func (o op) String() string { return o.kind + " " + o.subject }

func (c *client) do(t *testing.T, o op) {
	t.Helper()
	switch o.kind {
	case "pub":
		if err := c.Publish(o.subject, []byte("x")); err != nil {
			t.Fatalf("%s: publish %s: %v", c.user, o.subject, err)
		}
	case "sub":
		if _, err := c.SubscribeSync(o.subject); err != nil {
			t.Fatalf("%s: subscribe %s: %v", c.user, o.subject, err)
		}
	default:
		t.Fatalf("bad op %v", o)
	}
}

// Every user may do what it needs, and gets a permissions violation for what it
// must not. Each case uses a fresh connection so LastError belongs to that case.
func TestNATSPermissionsEnforced(t *testing.T) {
	url := startNATS(t)
	allowed := map[string][]op{
		"edge": {
			{"pub", "talim.cmd.v1.chat.send-chat-message"}, {"pub", "talim.cmd.v1.presence.set-status"},
			{"pub", "talim.presence.v1.conn.edge-1"}, {"pub", "talim.presence.v1.heartbeat.edge-1"},
			{"pub", "talim.health.v1.chat"},
			{"sub", "talim.user.v1.>"}, {"sub", "talim.user.v1.u1"}, {"sub", "talim.presence.v1.changed.u2"},
			{"sub", "talim.health.v1.edge"}, {"sub", "_INBOX.abc.*"},
		},
		"chat": {
			{"pub", "talim.user.v1.u1"}, {"pub", "talim.chat.v1.membership.r1"},
			{"sub", "talim.cmd.v1.chat.>"}, {"sub", "talim.chat.v1.membership.>"},
			{"sub", "talim.chat.v1.shared-rooms"}, {"sub", "talim.health.v1.chat"},
			{"pub", "talim.records.v1.notification.export"}, {"sub", "_INBOX.>"},
			{"pub", "talim.chat.v1.policy-changed"}, {"sub", "talim.chat.v1.policy-changed"},
			{"pub", "talim.notification.v1.chat-push"}, {"sub", "talim.chat.v1.unread-direct"},
		},
		"notification": {
			{"pub", "talim.user.v1.u1"}, {"pub", "talim.presence.v1.query"},
			{"sub", "talim.cmd.v1.notification.>"}, {"sub", "talim.health.v1.notification"}, {"sub", "_INBOX.>"},
			{"sub", "talim.records.v1.notification.>"},
			{"pub", "talim.chat.v1.unread-direct"}, {"sub", "talim.notification.v1.chat-push"},
		},
		"presence": {
			{"pub", "talim.presence.v1.changed.u1"}, {"pub", "talim.chat.v1.shared-rooms"},
			{"sub", "talim.cmd.v1.presence.>"}, {"sub", "talim.presence.v1.conn.>"},
			{"sub", "talim.presence.v1.heartbeat.>"}, {"sub", "talim.presence.v1.query"},
			{"sub", "talim.chat.v1.membership.>"}, {"sub", "talim.health.v1.presence"}, {"sub", "_INBOX.>"},
			{"sub", "talim.records.v1.presence.>"},
		},
		"talim-admin": {
			{"pub", "talim.health.v1.edge"}, {"pub", "talim.presence.v1.query"}, {"sub", ">"},
		},
	}
	denied := map[string][]op{
		"edge": {
			{"pub", "talim.user.v1.u1"}, {"pub", "talim.presence.v1.changed.u1"},
			{"pub", "talim.chat.v1.membership.r1"}, {"pub", "talim.chat.v1.shared-rooms"},
			{"pub", "talim.presence.v1.query"}, {"pub", "_INBOX.forged"},
			{"sub", "talim.cmd.v1.>"}, {"sub", "talim.cmd.v1.chat.send-chat-message"},
			{"sub", "talim.presence.v1.conn.>"}, {"sub", "talim.health.v1.chat"}, {"sub", ">"},
		},
		"chat": {
			{"pub", "talim.cmd.v1.chat.send-chat-message"}, {"pub", "talim.presence.v1.conn.edge-1"},
			{"pub", "talim.presence.v1.heartbeat.edge-1"}, {"pub", "talim.presence.v1.changed.u1"},
			{"pub", "talim.chat.v1.shared-rooms"}, {"pub", "talim.health.v1.edge"}, {"pub", "_INBOX.forged"},
			{"sub", "talim.cmd.v1.notification.>"}, {"sub", "talim.user.v1.>"}, {"sub", "talim.records.v1.>"},
		},
		"notification": {
			{"sub", "talim.cmd.v1.chat.>"}, {"sub", "talim.user.v1.>"}, {"sub", "talim.presence.v1.conn.>"},
			{"pub", "talim.cmd.v1.notification.list-notifications"}, {"pub", "talim.chat.v1.membership.r1"},
			{"pub", "talim.presence.v1.heartbeat.edge-1"}, {"pub", "_INBOX.forged"},
			{"pub", "talim.records.v1.presence.erase"}, {"sub", "talim.records.v1.presence.>"},
		},
		"presence": {
			{"pub", "talim.user.v1.u1"}, {"pub", "talim.presence.v1.conn.edge-1"},
			{"pub", "talim.presence.v1.heartbeat.edge-1"}, {"pub", "talim.cmd.v1.presence.set-status"},
			{"pub", "talim.chat.v1.membership.r1"}, {"pub", "talim.presence.v1.query"},
			{"sub", "talim.cmd.v1.chat.>"}, {"sub", "talim.user.v1.>"}, {"sub", "talim.chat.v1.shared-rooms"},
		},
		"talim-admin": {
			{"pub", "talim.cmd.v1.chat.send-chat-message"}, {"pub", "talim.user.v1.u1"},
			{"pub", "talim.presence.v1.conn.edge-1"}, {"pub", "talim.presence.v1.changed.u1"},
			{"pub", "talim.chat.v1.membership.r1"},
		},
	}
	for user := range contractPerms {
		t.Run(user, func(t *testing.T) {
			t.Parallel()
			for _, o := range allowed[user] {
				c := connect(t, url, user)
				c.do(t, o)
				if err := c.roundTrip(t); err != nil {
					t.Errorf("%s may %v, got %v", user, o, err)
				}
				c.Close()
			}
			for _, o := range denied[user] {
				c := connect(t, url, user)
				c.do(t, o)
				err := c.roundTrip(t)
				if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"`+o.subject+`"`) {
					t.Errorf("%s must not %v: got %v", user, o, err)
				}
				// The same violation reaches the connection's error handler: it was
				// queued before Flush returned.
				select {
				case aerr := <-c.asyncErrs:
					if !errors.Is(aerr, nats.ErrPermissionViolation) {
						t.Errorf("%s %v: error handler got %v", user, o, aerr)
					}
				case <-time.After(5 * time.Second):
					t.Errorf("%s %v: error handler never called", user, o)
				}
				c.Close()
			}
		})
	}
}

func TestNATSRejectsWrongPassword(t *testing.T) {
	url := startNATS(t)
	for user := range contractPerms {
		_, err := nats.Connect(url, nats.UserInfo(user, "wrong"), nats.NoReconnect())
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s with a wrong password: %v", user, err)
		}
	}
	if _, err := nats.Connect(url, nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("anonymous connection: %v", err)
	}
}

// Every flow of the contract table works end to end between the real users.
func TestNATSContractFlows(t *testing.T) {
	url := startNATS(t)
	conns := map[string]*client{}
	for user := range contractPerms {
		conns[user] = connect(t, url, user)
	}

	// Requests answered by a queue group (reply allowed through allow_responses).
	requests := []struct {
		from, to, subject, queue string
	}{
		{"edge", "chat", "talim.cmd.v1.chat.send-chat-message", "chat"},
		{"edge", "notification", "talim.cmd.v1.notification.list-notifications", "notification"},
		{"edge", "presence", "talim.cmd.v1.presence.set-status", "presence"},
		{"notification", "presence", "talim.presence.v1.query", "presence"},
		{"presence", "chat", "talim.chat.v1.shared-rooms", "chat"},
		{"edge", "chat", "talim.health.v1.chat", ""},
		{"edge", "notification", "talim.health.v1.notification", ""},
		{"edge", "presence", "talim.health.v1.presence", ""},
		{"talim-admin", "edge", "talim.health.v1.edge", ""},
		{"talim-admin", "presence", "talim.presence.v1.query", "presence"},
	}
	for _, r := range requests {
		t.Run("request "+r.subject+" from "+r.from, func(t *testing.T) {
			responder := connect(t, url, r.to)
			handler := func(m *nats.Msg) { _ = m.Respond(append([]byte("ok:"), m.Data...)) }
			var err error
			if r.queue != "" {
				_, err = responder.QueueSubscribe(r.subject, r.queue, handler)
			} else {
				_, err = responder.Subscribe(r.subject, handler)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := responder.roundTrip(t); err != nil {
				t.Fatalf("%s subscribe %s: %v", r.to, r.subject, err)
			}
			requester := connect(t, url, r.from)
			reply, err := requester.Request(r.subject, []byte("ping"), 5*time.Second)
			if err != nil {
				t.Fatalf("%s -> %s on %s: %v", r.from, r.to, r.subject, err)
			}
			if string(reply.Data) != "ok:ping" {
				t.Fatalf("reply %q", reply.Data)
			}
			if err := responder.roundTrip(t); err != nil {
				t.Fatalf("%s replying: %v", r.to, err)
			}
		})
	}

	// Fan-out publications.
	pubs := []struct {
		from    string
		to      []string
		subject string
	}{
		{"chat", []string{"edge", "talim-admin"}, "talim.user.v1.u1"},
		{"notification", []string{"edge"}, "talim.user.v1.u2"},
		{"edge", []string{"presence"}, "talim.presence.v1.conn.edge-1"},
		{"edge", []string{"presence"}, "talim.presence.v1.heartbeat.edge-1"},
		{"presence", []string{"edge"}, "talim.presence.v1.changed.u1"},
		{"chat", []string{"chat", "presence"}, "talim.chat.v1.membership.r1"},
	}
	for _, p := range pubs {
		t.Run("publish "+p.subject+" from "+p.from, func(t *testing.T) {
			var wg sync.WaitGroup
			var subs []*nats.Subscription
			for _, to := range p.to {
				c := connect(t, url, to)
				sub, err := c.SubscribeSync(p.subject)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.roundTrip(t); err != nil {
					t.Fatalf("%s subscribe: %v", to, err)
				}
				subs = append(subs, sub)
			}
			pub := conns[p.from]
			if err := pub.Publish(p.subject, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			if err := pub.roundTrip(t); err != nil {
				t.Fatalf("%s publish: %v", p.from, err)
			}
			for i, sub := range subs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "hello" {
						t.Errorf("%s did not receive %s: %v", p.to[i], p.subject, err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// A service may reply only to requests it received: a reply subject seen by a
// subscriber is not a blanket permission to publish on _INBOX.>.
func TestNATSResponsesAreScoped(t *testing.T) {
	url := startNATS(t)
	chat := connect(t, url, "chat")
	got := make(chan string, 1)
	if _, err := chat.Subscribe("talim.cmd.v1.chat.join-chat-room", func(m *nats.Msg) {
		got <- m.Reply
		_ = m.Respond([]byte("once"))
	}); err != nil {
		t.Fatal(err)
	}
	if err := chat.roundTrip(t); err != nil {
		t.Fatal(err)
	}
	edge := connect(t, url, "edge")
	if _, err := edge.Request("talim.cmd.v1.chat.join-chat-room", nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	reply := <-got
	forger := connect(t, url, "chat")
	if err := forger.Publish(reply+"x", []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if err := forger.roundTrip(t); !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("chat published to an inbox it was never asked on: %v", err)
	}
}
