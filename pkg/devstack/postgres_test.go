package devstack_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/talim/realtime/pkg/devstack"
	"github.com/talim/realtime/pkg/devstack/testkit"
)

// TestPostgresWithFerretDB needs Debian's postgresql package. It is skipped
// when the binaries are missing; `make` installs the package for the
// FerretDB-over-PostgreSQL benchmarks, which also makes this test run.
func TestPostgresWithFerretDB(t *testing.T) {
	if _, err := devstack.FindPostgresBin(); errors.Is(err, devstack.ErrPostgresNotInstalled) {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// t.TempDir is 0700 and owned by root; the postgres system user must be
	// able to traverse into it.
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	opts := devstack.PGOptions{Dir: filepath.Join(base, "pg"), Port: testkit.FreePort(t)}

	begin := time.Now()
	pg, err := devstack.StartPostgres(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	t.Logf("postgres initialised and started in %s: %s", time.Since(begin), pg.URL())

	f, err := devstack.StartFerretDB(ctx, devstack.FerretOptions{
		Handler:       devstack.FerretHandlerPostgreSQL,
		PostgreSQLURL: pg.URL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	client := connectMongo(t, f.MongoURI())
	exerciseMongo(ctx, t, client.Database("talim").Collection("messages"))
	disconnect(t, client)
	f.Close()

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil { // idempotent
		t.Fatal(err)
	}

	// Restart on the existing cluster: no initdb, data still there.
	begin = time.Now()
	pg2, err := devstack.StartPostgres(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg2.Stop() })
	t.Logf("postgres restarted in %s", time.Since(begin))
	// Starting again while it runs adopts the running server.
	if _, err := devstack.StartPostgres(ctx, opts); err != nil {
		t.Fatalf("start on a running cluster: %v", err)
	}

	f2, err := devstack.StartFerretDB(ctx, devstack.FerretOptions{
		Handler:       devstack.FerretHandlerPostgreSQL,
		PostgreSQLURL: pg2.URL(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	client2 := connectMongo(t, f2.MongoURI())
	defer disconnect(t, client2)
	n, err := client2.Database("talim").Collection("messages").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("after restart: %d documents, want 3", n)
	}
}

func TestPostgresMissingBinaries(t *testing.T) {
	_, err := devstack.StartPostgres(context.Background(), devstack.PGOptions{
		Dir:    t.TempDir(),
		BinDir: filepath.Join(t.TempDir(), "nonexistent"),
		Port:   testkit.FreePort(t),
	})
	if err == nil {
		t.Fatal("want error with a bogus BinDir")
	}
}
