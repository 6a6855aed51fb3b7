package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// Job kinds.
const (
	KindFanout  = "fanout"
	KindDeliver = "deliver"
)

// Content is what a push says. It is stored in jobs, so field names are stable.
type Content struct {
	// Kind is "notification" or "message"; the service worker opens the inbox item
	// or the room.
	Kind     string `bson:"kind"`
	Category string `bson:"category"`
	Title    string `bson:"title"`
	Body     string `bson:"body"`
	RoomID   string `bson:"roomId,omitempty"`
	// SendKey is the notification send's idempotency key; with the recipient it
	// gives the notification id (Config.NotificationID).
	SendKey string `bson:"sendKey,omitempty"`
	// Topic is the collapse key: pushes with one topic to one browser are merged.
	Topic   string `bson:"topic"`
	Urgency string `bson:"urgency"`
	TTLSec  int64  `bson:"ttlSec"`
	Urgent  bool   `bson:"urgent"`
}

// Job is one document of push_jobs.
type Job struct {
	ID         string    `bson:"_id"`
	Kind       string    `bson:"kind"`
	Pending    bool      `bson:"pending"`
	Version    int64     `bson:"version"`
	Due        time.Time `bson:"due"`
	LeaseUntil time.Time `bson:"leaseUntil"`
	LeaseOwner string    `bson:"leaseOwner"`
	Attempts   int       `bson:"attempts"`
	Content    Content   `bson:"content"`
	Count      int       `bson:"count"`
	CreatedAt  time.Time `bson:"createdAt"`
	ExpiresAt  time.Time `bson:"expiresAt"`
	// Fanout jobs.
	Recipients []string `bson:"recipients,omitempty"`
	// Deliver jobs.
	UserID     string     `bson:"userId,omitempty"`
	SubID      string     `bson:"subId,omitempty"`
	LastSentAt *time.Time `bson:"lastSentAt"`
}

func mongoUpsert() options.Lister[options.ReplaceOptions] { return options.Replace().SetUpsert(true) }

// InsertFanout stores a fanout job (one insert). id makes it idempotent: a second
// insert with the same id is a no-op.
func (s *Store) InsertFanout(ctx context.Context, id string, recipients []string, c Content, now time.Time) error {
	j := Job{ID: id, Kind: KindFanout, Pending: true, Version: 1, Due: now, Content: c, Count: 1, CreatedAt: now,
		ExpiresAt: now.Add(time.Duration(c.TTLSec) * time.Second), Recipients: recipients}
	if _, err := s.jobs.InsertOne(ctx, j); err != nil && !mongox.IsDuplicateKey(err) {
		return fmt.Errorf("insert push fanout: %w", err)
	}
	return nil
}

// DeliverID is the id of the deliver job of subscription subID and topic.
func DeliverID(subID, topic string) string { return hashID("pj_", subID, topic) }

// UpsertDeliver queues a push of c to subscription subID of userID, merged into a
// pending job of the same topic (count + 1, newest content). After a sent push the
// next is due interval after it.
func (s *Store) UpsertDeliver(ctx context.Context, userID, subID string, c Content, now time.Time, interval time.Duration) error {
	id := DeliverID(subID, c.Topic)
	exp := now.Add(time.Duration(c.TTLSec) * time.Second)
	for range 8 {
		var cur Job
		err := s.jobs.FindOne(ctx, idFilter(id)).Decode(&cur)
		if errors.Is(err, mongo.ErrNoDocuments) {
			j := Job{ID: id, Kind: KindDeliver, Pending: true, Version: 1, Due: now, Content: c, Count: 1, CreatedAt: now,
				ExpiresAt: exp, UserID: userID, SubID: subID}
			_, err = s.jobs.InsertOne(ctx, j)
			if mongox.IsDuplicateKey(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("insert push job: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("load push job: %w", err)
		}
		set := bson.D{{Key: "content", Value: c}, {Key: "expiresAt", Value: exp}, {Key: "version", Value: cur.Version + 1}}
		if cur.Pending {
			set = append(set, bson.E{Key: "count", Value: cur.Count + 1})
		} else {
			due := now
			if cur.LastSentAt != nil && cur.LastSentAt.Add(interval).After(now) {
				due = cur.LastSentAt.Add(interval)
			}
			set = append(set, bson.E{Key: "pending", Value: true}, bson.E{Key: "count", Value: 1},
				bson.E{Key: "attempts", Value: 0}, bson.E{Key: "due", Value: due}, bson.E{Key: "createdAt", Value: now})
		}
		ok, err := s.updateVersion(ctx, id, cur.Version, set)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("queue push %s: %w", id, ErrConflict)
}

func (s *Store) updateVersion(ctx context.Context, id string, version int64, set bson.D) (bool, error) {
	res, err := s.jobs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "version", Value: version}},
		bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return false, fmt.Errorf("update push job %s: %w", id, err)
	}
	return res.MatchedCount == 1, nil
}

// Due returns up to limit pending jobs due at now whose lease has expired. The
// query is the equality filter {pending: true}; due and lease are checked here.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]Job, error) {
	cur, err := s.jobs.Find(ctx, bson.D{{Key: "pending", Value: true}})
	if err != nil {
		return nil, fmt.Errorf("find due push jobs: %w", err)
	}
	defer cur.Close(ctx)
	var out []Job
	for len(out) < limit && cur.Next(ctx) {
		var j Job
		if err := cur.Decode(&j); err != nil {
			return out, fmt.Errorf("decode push job: %w", err)
		}
		if !j.Due.After(now) && !j.LeaseUntil.After(now) {
			out = append(out, j)
		}
	}
	if err := cur.Err(); err != nil {
		return out, fmt.Errorf("read push jobs: %w", err)
	}
	return out, nil
}

// Claim leases j to owner until now+lease; false when another worker claimed it or
// it changed since it was read. The claim is an insert of the unique _id
// "<job>@<version>" into push_claims: FerretDB v1 applies an update as read, change
// and write, so two conditional updates of one version can both match, while of
// two inserts of one _id exactly one succeeds on MongoDB and FerretDB alike.
func (s *Store) Claim(ctx context.Context, j *Job, owner string, now time.Time, lease time.Duration) (bool, error) {
	claim := fmt.Sprintf("%s@%d", j.ID, j.Version)
	doc := bson.D{{Key: "_id", Value: claim}, {Key: "owner", Value: owner}, {Key: "at", Value: now}}
	_, err := s.claims.InsertOne(ctx, doc)
	if mongox.IsDuplicateKey(err) {
		// A claimant that died between its insert and its update leaves the claim
		// behind; past a lease it is removed (by exactly one remover: the delete is
		// conditional on its time) and the insert tried once more.
		var old struct {
			At time.Time `bson:"at"`
		}
		if ferr := s.claims.FindOne(ctx, idFilter(claim)).Decode(&old); ferr != nil || old.At.Add(lease).After(now) {
			return false, nil
		}
		if _, derr := s.claims.DeleteOne(ctx, bson.D{{Key: "_id", Value: claim}, {Key: "at", Value: old.At}}); derr != nil {
			return false, fmt.Errorf("delete stale push claim: %w", derr)
		}
		_, err = s.claims.InsertOne(ctx, doc)
		if mongox.IsDuplicateKey(err) {
			return false, nil
		}
	}
	if err != nil {
		return false, fmt.Errorf("claim push job: %w", err)
	}
	ok, err := s.updateVersion(ctx, j.ID, j.Version, bson.D{{Key: "leaseUntil", Value: now.Add(lease)},
		{Key: "leaseOwner", Value: owner}, {Key: "version", Value: j.Version + 1}})
	// The claim document has done its work once the version moved on.
	if _, derr := s.claims.DeleteOne(ctx, idFilter(claim)); derr != nil && err == nil {
		err = fmt.Errorf("delete push claim: %w", derr)
	}
	if ok {
		j.Version++
		j.LeaseUntil, j.LeaseOwner = now.Add(lease), owner
	}
	return ok, err
}

// Delay puts j back until due without counting an attempt, moving its expiry by
// the same delay: a push held back by quiet hours keeps its whole TTL.
func (s *Store) Delay(ctx context.Context, j *Job, now, due time.Time) error {
	set := bson.D{{Key: "due", Value: due}, {Key: "expiresAt", Value: j.ExpiresAt.Add(due.Sub(now))}}
	return s.release(ctx, j, set, func(*Job) bson.D { return set })
}

// release ends j's lease with set applied; when j changed meanwhile (a push was
// merged into it) merged gives the update for the current document instead.
func (s *Store) release(ctx context.Context, j *Job, set bson.D, merged func(cur *Job) bson.D) error {
	base := bson.D{{Key: "leaseUntil", Value: time.Time{}}, {Key: "leaseOwner", Value: ""}}
	ok, err := s.updateVersion(ctx, j.ID, j.Version, append(append(base, set...), bson.E{Key: "version", Value: j.Version + 1}))
	for i := 0; err == nil && !ok && i < 8; i++ {
		var cur Job
		if err = s.jobs.FindOne(ctx, idFilter(j.ID)).Decode(&cur); err != nil {
			return fmt.Errorf("reload push job: %w", err)
		}
		ok, err = s.updateVersion(ctx, j.ID, cur.Version, append(append(base, merged(&cur)...), bson.E{Key: "version", Value: cur.Version + 1}))
	}
	if err == nil && !ok {
		err = ErrConflict
	}
	return err
}

// Sent records a successful push of j. Pushes merged meanwhile stay pending and
// are due interval later.
func (s *Store) Sent(ctx context.Context, j *Job, now time.Time, interval time.Duration) error {
	return s.release(ctx, j, bson.D{{Key: "pending", Value: false}, {Key: "count", Value: 0}, {Key: "attempts", Value: 0},
		{Key: "lastSentAt", Value: now}},
		func(cur *Job) bson.D {
			if !cur.Pending { // dropped meanwhile: nothing left
				return bson.D{{Key: "lastSentAt", Value: now}}
			}
			return bson.D{{Key: "count", Value: max(cur.Count-j.Count, 1)}, {Key: "attempts", Value: 0},
				{Key: "lastSentAt", Value: now}, {Key: "due", Value: now.Add(interval)}}
		})
}

// Retry puts j back with attempts+1 (unless keepAttempts), due at due.
func (s *Store) Retry(ctx context.Context, j *Job, due time.Time, keepAttempts bool) error {
	att := j.Attempts + 1
	if keepAttempts {
		att = j.Attempts
	}
	set := bson.D{{Key: "due", Value: due}, {Key: "attempts", Value: att}}
	return s.release(ctx, j, set, func(*Job) bson.D { return set })
}

// Drop ends j without a push (expired, refused by the gate, subscription gone).
func (s *Store) Drop(ctx context.Context, j *Job) error {
	if j.Kind == KindFanout {
		return s.Done(ctx, j)
	}
	set := bson.D{{Key: "pending", Value: false}, {Key: "count", Value: 0}, {Key: "attempts", Value: 0}}
	return s.release(ctx, j, set, func(*Job) bson.D { return set })
}

// Done deletes a finished fanout job.
func (s *Store) Done(ctx context.Context, j *Job) error {
	if _, err := s.jobs.DeleteOne(ctx, idFilter(j.ID)); err != nil {
		return fmt.Errorf("delete push job: %w", err)
	}
	return nil
}

// DeleteIdle deletes deliver jobs that are not pending and last sent before
// before (they only remembered lastSentAt for the collapse interval).
func (s *Store) DeleteIdle(ctx context.Context, before time.Time, limit int) (int, error) {
	cur, err := s.jobs.Find(ctx, bson.D{{Key: "pending", Value: false}})
	if err != nil {
		return 0, fmt.Errorf("find idle push jobs: %w", err)
	}
	defer cur.Close(ctx)
	var ids []string
	for len(ids) < limit && cur.Next(ctx) {
		var j Job
		if err := cur.Decode(&j); err == nil && (j.LastSentAt == nil || j.LastSentAt.Before(before)) {
			ids = append(ids, j.ID)
		}
	}
	n := 0
	for _, id := range ids {
		res, err := s.jobs.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "pending", Value: false}})
		if err != nil {
			return n, fmt.Errorf("delete idle push job: %w", err)
		}
		n += int(res.DeletedCount)
	}
	return n, nil
}

// Job returns the job with id (tests, tools).
func (s *Store) Job(ctx context.Context, id string) (*Job, error) {
	var j Job
	if err := s.jobs.FindOne(ctx, idFilter(id)).Decode(&j); err != nil {
		return nil, fmt.Errorf("load push job %s: %w", id, err)
	}
	return &j, nil
}
