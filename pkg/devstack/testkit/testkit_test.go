package testkit_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/devstack/testkit"
)

func TestMongoGivesDistinctDatabases(t *testing.T) {
	uri1, db1 := testkit.Mongo(t)
	uri2, db2 := testkit.Mongo(t)
	if uri1 != uri2 {
		t.Fatalf("shared server expected, got %s and %s", uri1, uri2)
	}
	if db1 == db2 {
		t.Fatalf("same database name twice: %s", db1)
	}
	if os.Getenv(testkit.MongoURIEnv) == "" && !strings.HasPrefix(uri1, "mongodb://127.0.0.1:") {
		t.Fatalf("unexpected embedded URI %s", uri1)
	}
}

func TestMongoClientIsolation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, dbA := testkit.MongoClient(t)
	_, dbB := testkit.MongoClient(t)
	if _, err := dbA.Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	n, err := dbB.Collection("c").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s sees %d documents of %s", dbB.Name(), n, dbA.Name())
	}
}

func TestMongoClientDropsDatabaseAtCleanup(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		_, db := testkit.MongoClient(t)
		name = db.Name()
		if _, err := db.Collection("c").InsertOne(context.Background(), bson.D{{Key: "a", Value: 1}}); err != nil {
			t.Fatal(err)
		}
	})
	uri, _ := testkit.Mongo(t)
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	names, err := client.ListDatabaseNames(context.Background(), bson.D{{Key: "name", Value: name}})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Fatalf("database %s still exists after cleanup", name)
	}
}

func TestDBName(t *testing.T) {
	long := "TestSomething/with a very/long-subtest name that goes on and on and on and on and on"
	got := testkit.DBName(long, 12345)
	if len(got) > 63 {
		t.Fatalf("%q is %d bytes", got, len(got))
	}
	if !strings.HasSuffix(got, "_"+strconv.Itoa(os.Getpid())+"_12345") {
		t.Fatalf("%q lost its unique suffix", got)
	}
	for _, r := range got {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			t.Fatalf("%q contains %q", got, r)
		}
	}
	if got := testkit.DBName("0/", 1); !strings.HasPrefix(got, "t_") {
		t.Fatalf("%q should start with a letter", got)
	}
}

func TestNATSHelpers(t *testing.T) {
	n := testkit.NATS(t)
	nc := testkit.NATSConn(t, n.ClientURL())
	var got atomic.Int32
	if _, err := nc.Subscribe("x", func(*natsMsg) { got.Add(1) }); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := nc.Publish("x", nil); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return got.Load() == 3 }, "3 messages delivered")
}

func TestEventuallyFails(t *testing.T) {
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testkit.Eventually(ft, 30*time.Millisecond, func() bool { return false }, "never %s", "true")
	}()
	<-done
	if !strings.Contains(ft.msg, "never true") {
		t.Fatalf("failure message %q", ft.msg)
	}
}

func TestFreePort(t *testing.T) {
	p := testkit.FreePort(t)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("port %d not free: %v", p, err)
	}
	_ = l.Close()
}
