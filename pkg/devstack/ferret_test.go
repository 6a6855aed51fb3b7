package devstack_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/devstack"
)

func connectMongo(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func disconnect(t *testing.T, c *mongo.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Disconnect(ctx); err != nil {
		t.Errorf("disconnect: %v", err)
	}
}

type message struct {
	ID     string `bson:"_id"`
	RoomID string `bson:"roomId"`
	Seq    int64  `bson:"seq"`
	Body   string `bson:"body"`
}

// exerciseMongo inserts, indexes and queries through mongo-driver v2.
func exerciseMongo(ctx context.Context, t *testing.T, coll *mongo.Collection) {
	t.Helper()
	_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys:    bson.D{{Key: "roomId", Value: 1}, {Key: "seq", Value: 1}},
		Options: options.Index().SetUnique(true).SetName("room_seq"),
	})
	if err != nil {
		t.Fatalf("create unique index: %v", err)
	}
	docs := []any{
		message{ID: "m1", RoomID: "r1", Seq: 1, Body: "hello"},
		message{ID: "m2", RoomID: "r1", Seq: 2, Body: "world"},
		message{ID: "m3", RoomID: "r2", Seq: 1, Body: "other"},
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatalf("insert: %v", err)
	}
	_, err = coll.InsertOne(ctx, message{ID: "m4", RoomID: "r1", Seq: 2, Body: "dup"})
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("insert violating unique index: got %v, want duplicate key error", err)
	}

	cur, err := coll.Find(ctx, bson.D{{Key: "roomId", Value: "r1"}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: -1}}).SetLimit(10))
	if err != nil {
		t.Fatalf("find: %v", err)
	}
	var got []message
	if err := cur.All(ctx, &got); err != nil {
		t.Fatalf("find: %v", err)
	}
	if len(got) != 2 || got[0].ID != "m2" || got[1].ID != "m1" {
		t.Fatalf("find r1 sorted by seq desc: got %+v", got)
	}
}

func TestFerretDBSQLitePersistsAcrossRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()

	begin := time.Now()
	f, err := devstack.StartFerretDB(ctx, devstack.FerretOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ferretdb started in %s at %s", time.Since(begin), f.MongoURI())
	client := connectMongo(t, f.MongoURI())
	coll := client.Database("talim").Collection("messages")
	exerciseMongo(ctx, t, coll)
	disconnect(t, client)
	begin = time.Now()
	f.Close()
	f.Close() // idempotent
	t.Logf("ferretdb closed in %s", time.Since(begin))

	f2, err := devstack.StartFerretDB(ctx, devstack.FerretOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	client2 := connectMongo(t, f2.MongoURI())
	defer disconnect(t, client2)
	coll2 := client2.Database("talim").Collection("messages")
	n, err := coll2.CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("after restart: %d documents, want 3", n)
	}
	// The unique index survived too.
	_, err = coll2.InsertOne(ctx, message{ID: "m5", RoomID: "r2", Seq: 1})
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("after restart: got %v, want duplicate key error", err)
	}
}

func TestFerretDBOptionErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := devstack.StartFerretDB(ctx, devstack.FerretOptions{}); err == nil {
		t.Fatal("sqlite without Dir: want error")
	}
	if _, err := devstack.StartFerretDB(ctx, devstack.FerretOptions{Handler: "postgresql"}); err == nil {
		t.Fatal("postgresql without URL: want error")
	}
	_, err := devstack.StartFerretDB(ctx, devstack.FerretOptions{Handler: "mysql", Dir: t.TempDir()})
	if err == nil || !strings.HasPrefix(err.Error(), "start ferretdb: ") {
		t.Fatalf("unknown handler: got %v, want a wrapped error", err)
	}
}
