package devstack

import (
	"context"
	"fmt"
	"strconv"
)

// ginTwinsSQL makes FerretDB's indexes serve its queries. FerretDB v1.24 pushes a
// plain equality filter {f: v} (and a point read by _id) down as
// `_jsonb->'f' @> v`, a jsonb containment that the btree indexes it creates on
// `_jsonb->'f'` cannot answer, so every query scanned its whole table (a point
// read by _id took about 0.5 s at 100,000 documents). A GIN index
// (jsonb_path_ops) on the same expressions answers containment: an event trigger
// gives every btree index FerretDB creates such a twin, and the last statement
// gives one to the indexes made before the trigger existed. fastupdate is off so
// a read never scans a pending list. A point read, or a read of one
// {roomId, bucket} group of messages, then costs an index lookup.
const ginTwinsSQL = `
CREATE OR REPLACE FUNCTION talim_gin_twin(idx oid) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  def text; tbl regclass; nkeys int; cols text[] := '{}'; m text[]; name text;
BEGIN
  SELECT pg_get_indexdef(i.indexrelid), i.indrelid::regclass, i.indnkeyatts INTO def, tbl, nkeys
    FROM pg_index i WHERE i.indexrelid = idx;
  IF def IS NULL OR position(' USING btree (' IN def) = 0 THEN RETURN; END IF;
  FOR m IN SELECT regexp_matches(def, '\(_jsonb -> ''((?:[^'']|'''')*)''::text\)', 'g') LOOP
    cols := cols || format('(_jsonb -> %L::text) jsonb_path_ops', replace(m[1], '''''', ''''));
  END LOOP;
  IF cardinality(cols) = 0 OR cardinality(cols) <> nkeys THEN RETURN; END IF;
  SELECT left(c.relname, 50) || '_' || left(md5(c.relname), 8) || '_gin' INTO name FROM pg_class c WHERE c.oid = idx;
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (%s) WITH (fastupdate = off)', name, tbl, array_to_string(cols, ', '));
END
$fn$;
CREATE OR REPLACE FUNCTION talim_gin_twins_on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE r record;
BEGIN
  FOR r IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE INDEX' AND object_type = 'index' LOOP
    PERFORM talim_gin_twin(r.objid);
  END LOOP;
END
$fn$;
DROP EVENT TRIGGER IF EXISTS talim_gin_twins;
CREATE EVENT TRIGGER talim_gin_twins ON ddl_command_end WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION talim_gin_twins_on_ddl();
SELECT talim_gin_twin(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE a.amname = 'btree' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast');
`

// installGINTwins runs ginTwinsSQL in the database (idempotent).
func (p *Postgres) installGINTwins(ctx context.Context) error {
	if _, err := p.output(ctx, pgInitTimeout, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.opts.Port), "-U", p.opts.User, "-d", p.opts.Database,
		"-c", ginTwinsSQL); err != nil {
		return fmt.Errorf("index ferretdb's tables for its queries: %w", err)
	}
	return nil
}
