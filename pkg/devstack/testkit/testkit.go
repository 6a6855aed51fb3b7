// Package testkit provides test helpers on top of devstack: in-process NATS
// servers, a shared embedded FerretDB with one fresh database per test,
// polling assertions and free ports. Import it from _test.go files only.
//
// # Shared FerretDB and goroutine-leak checks
//
// Mongo and MongoClient start ONE embedded FerretDB per test binary, lazily,
// on first use, and never stop it before all tests ran: it lives until the
// process exits, or until Main stops it after m.Run. Its
// goroutines (listener accept loop, per-connection handlers, SQLite pool)
// therefore remain after every test. Tests that check for goroutine leaks
// (e.g. with go.uber.org/goleak) must either take their baseline after the
// first Mongo call, or ignore stacks whose functions start with
// FerretDBGoroutinePrefix (and the mongo-driver's pool goroutines of clients
// that are still connected). Clients returned by MongoClient are
// disconnected in t.Cleanup, so only the server's goroutines remain.
//
// Set TALIM_TEST_MONGODB_URI to run against another server (a real MongoDB,
// or FerretDB over PostgreSQL) instead of starting the embedded FerretDB.
package testkit

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/devstack"
)

// MongoURIEnv names the environment variable that, when set, makes Mongo and
// MongoClient use that server instead of the embedded FerretDB.
const MongoURIEnv = "TALIM_TEST_MONGODB_URI"

// FerretDBGoroutinePrefix is the package path prefix of the shared FerretDB's
// goroutines, for goroutine-leak checkers to ignore.
const FerretDBGoroutinePrefix = "github.com/FerretDB/FerretDB/"

// NATS starts a fresh in-process NATS server on a random loopback port and
// shuts it down in t.Cleanup.
func NATS(t testing.TB) *devstack.NATS {
	t.Helper()
	n, err := devstack.StartNATS(devstack.NATSOptions{Port: devstack.RandomPort})
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

// NATSConn connects to url and closes the connection in t.Cleanup.
func NATSConn(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Name(t.Name()), nats.Timeout(5 * time.Second)}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("testkit: connect to nats %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// sharedFerret is the per-test-binary embedded FerretDB.
var sharedFerret struct {
	once sync.Once
	uri  string
	err  error
	seq  atomic.Uint64
	f    *devstack.FerretDB
	dir  string
}

// mongoStartTimeout bounds the lazy start of the shared FerretDB.
const mongoStartTimeout = 60 * time.Second

func sharedMongoURI() (string, error) {
	if uri := os.Getenv(MongoURIEnv); uri != "" {
		return uri, nil
	}
	sharedFerret.once.Do(func() {
		dir, err := os.MkdirTemp("", "talim-testkit-ferretdb-")
		if err != nil {
			sharedFerret.err = fmt.Errorf("temp dir: %w", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), mongoStartTimeout)
		defer cancel()
		f, err := devstack.StartFerretDB(ctx, devstack.FerretOptions{Dir: dir})
		if err != nil {
			_ = os.RemoveAll(dir)
			sharedFerret.err = err
			return
		}
		// Closed only by Main; otherwise it lives until the test binary
		// exits (see package doc).
		sharedFerret.uri, sharedFerret.f, sharedFerret.dir = f.MongoURI(), f, dir
	})
	return sharedFerret.uri, sharedFerret.err
}

// Main is an optional TestMain body: it runs the tests, then stops the
// shared FerretDB (if one was started) and removes its SQLite directory, and
// exits with the tests' status. Without it the server simply dies with the
// process and its temporary directory (talim-testkit-ferretdb-*) is left
// behind in the OS temp directory.
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if f := sharedFerret.f; f != nil {
		f.Close()
		_ = os.RemoveAll(sharedFerret.dir)
	}
	os.Exit(code)
}

// Mongo returns the URI of the shared test MongoDB server (the embedded
// FerretDB, or TALIM_TEST_MONGODB_URI) and a database name unique within
// this test binary, derived from t.Name(). The database is not created
// (MongoDB creates it on first write) and not dropped; use MongoClient for
// automatic cleanup.
func Mongo(t testing.TB) (uri, db string) {
	t.Helper()
	uri, err := sharedMongoURI()
	if err != nil {
		t.Fatalf("testkit: shared mongo: %v", err)
	}
	return uri, DBName(t.Name(), sharedFerret.seq.Add(1))
}

// maxDBName is the longest database name we produce (FerretDB over
// PostgreSQL limits names to 63 bytes, MongoDB to 64).
const maxDBName = 63

// DBName turns a test name and sequence number into a valid database name
// of at most 63 bytes: lower-case letters, digits and '_', with the number
// (and the process id, so that parallel test binaries sharing one external
// server via TALIM_TEST_MONGODB_URI do not collide) at the end.
func DBName(testName string, seq uint64) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	base := strings.Trim(b.String(), "_")
	if base == "" || base[0] < 'a' || base[0] > 'z' {
		base = "t_" + base
	}
	suffix := fmt.Sprintf("_%d_%d", os.Getpid(), seq)
	if len(base)+len(suffix) > maxDBName {
		base = strings.TrimRight(base[:maxDBName-len(suffix)], "_")
	}
	return base + suffix
}

// MongoClient connects a mongo-driver v2 client to the shared test server
// and returns it with a fresh database (see Mongo). In t.Cleanup the
// database is dropped (best effort) and the client disconnected.
func MongoClient(t testing.TB) (*mongo.Client, *mongo.Database) {
	t.Helper()
	uri, name := Mongo(t)
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("testkit: mongo connect %s: %v", uri, err)
	}
	db := client.Database(name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := db.Drop(ctx); err != nil {
			t.Logf("testkit: drop database %s: %v", name, err)
		}
		if err := client.Disconnect(ctx); err != nil {
			t.Logf("testkit: mongo disconnect: %v", err)
		}
	})
	return client, db
}

// Eventually calls cond until it returns true, polling with a short,
// growing backoff (1ms doubling up to 50ms), and fails the test when
// timeout elapses first. msgAndArgs, when given, is a format string and its
// arguments describing what was awaited. Use it instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testkit: condition not met within %s%s", timeout, describe(msgAndArgs))
		}
		time.Sleep(wait)
		if wait *= 2; wait > 50*time.Millisecond {
			wait = 50 * time.Millisecond
		}
	}
}

func describe(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return ": " + fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return ": " + fmt.Sprint(msgAndArgs...)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Prefer
// letting servers bind port 0 themselves; this is for tools that need a
// concrete port up front (there is an unavoidable small race).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
