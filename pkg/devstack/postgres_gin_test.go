package devstack

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Every index FerretDB creates gets a GIN twin, and an equality read through
// FerretDB is then an index scan in PostgreSQL (not a scan of the table).
func TestPostgres_GINTwins(t *testing.T) {
	if _, err := FindPostgresBin(); errors.Is(err, ErrPostgresNotInstalled) {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	pg, err := StartPostgres(ctx, PGOptions{Dir: filepath.Join(base, "pg"), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	f, err := StartFerretDB(ctx, FerretOptions{Handler: FerretHandlerPostgreSQL, PostgreSQLURL: pg.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	client, err := mongo.Connect(options.Client().ApplyURI(f.MongoURI()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	coll := client.Database("gin").Collection("messages")
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "roomId", Value: 1}, {Key: "bucket", Value: 1}}}); err != nil {
		t.Fatal(err)
	}
	var docs []any
	for i := range 2000 {
		docs = append(docs, bson.D{{Key: "_id", Value: "m" + strconv.Itoa(i)}, {Key: "roomId", Value: "r" + strconv.Itoa(i%3)}, {Key: "bucket", Value: int64(i / 64)}})
	}
	if _, err := coll.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}
	n, err := coll.CountDocuments(ctx, bson.D{{Key: "roomId", Value: "r1"}, {Key: "bucket", Value: int64(3)}})
	if err != nil || n != 21 {
		t.Fatalf("count = %d, %v; want 21", n, err)
	}
	psql := func(sql string) string {
		t.Helper()
		out, err := pg.output(ctx, pgQuickTimeout, "psql", "-X", "-q", "-t", "-A", "-h", "127.0.0.1", "-p", strconv.Itoa(port),
			"-U", DefaultPGUser, "-d", DefaultPGDatabase, "-c", sql)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	defs := psql(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'gin' AND indexdef LIKE '% USING gin %'`)
	for _, want := range []string{
		"(((_jsonb -> '_id'::text)) jsonb_path_ops)",
		"((_jsonb -> 'roomId'::text)) jsonb_path_ops, ((_jsonb -> 'bucket'::text)) jsonb_path_ops)",
	} {
		if !strings.Contains(defs, want) {
			t.Errorf("no GIN twin %s among:\n%s", want, defs)
		}
	}
	table := strings.TrimSpace(psql(`SELECT tablename FROM pg_tables WHERE schemaname = 'gin' AND tablename LIKE 'messages%'`))
	plan := psql(`SET enable_seqscan = on; EXPLAIN SELECT _jsonb FROM gin.` + table + ` WHERE _jsonb->'roomId' @> '"r1"' AND _jsonb->'bucket' @> '3'`)
	if !strings.Contains(plan, "Bitmap Index Scan") {
		t.Errorf("equality read is not an index scan:\n%s", plan)
	}
}
