package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/pkg/mongox"
)

// AddMember inserts m, or changes the role of an existing membership to m.Role.
// added/updated report what happened (both false: already a member with that role).
func (s *Store) AddMember(ctx context.Context, m Member) (added, updated bool, err error) {
	defer s.observe("add_member", time.Now())
	m.ID = MemberID(m.RoomID, m.UserID)
	if _, err := s.members.InsertOne(ctx, m); err == nil {
		return true, false, nil
	} else if !mongox.IsDuplicateKey(err) {
		return false, false, wrap("add member "+m.ID, err)
	}
	res, err := s.members.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: m.ID}, {Key: "role", Value: bson.D{{Key: "$ne", Value: m.Role}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "role", Value: m.Role}}}})
	if err != nil {
		return false, false, wrap("update member "+m.ID, err)
	}
	return false, res.ModifiedCount > 0, nil
}

// MemberResult is what AddMembers did with one membership.
type MemberResult uint8

// AddMembers results.
const (
	MemberFailed    MemberResult = iota // not written (an error stopped the batch)
	MemberAdded                         // inserted
	MemberUpdated                       // existed with another role: role changed
	MemberUnchanged                     // existed with this role
)

// AddMembers writes a batch of memberships of one room with one unordered
// insert; the ones that exist already (duplicate key) get their role changed
// when it differs, one conditional update each (role changes are rare). The
// result has one entry per input; on error the entries not settled are
// MemberFailed.
func (s *Store) AddMembers(ctx context.Context, ms []Member) ([]MemberResult, error) {
	defer s.observe("add_members", time.Now())
	return s.insertMembers(ctx, ms, true)
}

// EnsureMembers inserts the memberships that do not exist yet (whatever the
// role of those that do) with one unordered insert: MemberAdded for the new
// ones, MemberUnchanged for the others.
func (s *Store) EnsureMembers(ctx context.Context, ms []Member) ([]MemberResult, error) {
	defer s.observe("ensure_members", time.Now())
	return s.insertMembers(ctx, ms, false)
}

func (s *Store) insertMembers(ctx context.Context, ms []Member, setRole bool) ([]MemberResult, error) {
	res := make([]MemberResult, len(ms))
	if len(ms) == 0 {
		return res, nil
	}
	docs := make([]any, len(ms))
	for i := range ms {
		ms[i].ID = MemberID(ms[i].RoomID, ms[i].UserID)
		docs[i] = ms[i]
	}
	_, err := s.members.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	dup := make([]bool, len(ms))
	if err != nil {
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
			return res, wrap("add members", err)
		}
		for _, we := range bwe.WriteErrors {
			if we.Index < 0 || we.Index >= len(ms) {
				continue
			}
			if !mongo.IsDuplicateKeyError(we) {
				return res, wrap("add members", err)
			}
			dup[we.Index] = true
		}
	}
	for i, m := range ms {
		if !dup[i] {
			res[i] = MemberAdded
			continue
		}
		if !setRole {
			res[i] = MemberUnchanged
			continue
		}
		r, err := s.members.UpdateOne(ctx,
			bson.D{{Key: "_id", Value: m.ID}, {Key: "role", Value: bson.D{{Key: "$ne", Value: m.Role}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "role", Value: m.Role}}}})
		if err != nil {
			return res, wrap("update member "+m.ID, err)
		}
		res[i] = MemberUnchanged
		if r.ModifiedCount > 0 {
			res[i] = MemberUpdated
		}
	}
	return res, nil
}

// EnsureMember inserts m unless the membership exists (whatever its role) and
// reports whether it was inserted.
func (s *Store) EnsureMember(ctx context.Context, m Member) (added bool, err error) {
	defer s.observe("ensure_member", time.Now())
	m.ID = MemberID(m.RoomID, m.UserID)
	if _, err := s.members.InsertOne(ctx, m); err != nil {
		if mongox.IsDuplicateKey(err) {
			return false, nil
		}
		return false, wrap("ensure member "+m.ID, err)
	}
	return true, nil
}

// RemoveMember deletes the membership and returns it (ErrNotFound when absent).
func (s *Store) RemoveMember(ctx context.Context, roomID, userID string) (*Member, error) {
	defer s.observe("remove_member", time.Now())
	var m Member
	if err := s.members.FindOneAndDelete(ctx, bson.D{{Key: "_id", Value: MemberID(roomID, userID)}}).Decode(&m); err != nil {
		return nil, wrap("remove member", err)
	}
	return &m, nil
}

// Member returns userID's membership of roomID.
func (s *Store) Member(ctx context.Context, roomID, userID string) (*Member, error) {
	defer s.observe("get_member", time.Now())
	var m Member
	if err := s.members.FindOne(ctx, bson.D{{Key: "_id", Value: MemberID(roomID, userID)}}).Decode(&m); err != nil {
		return nil, wrap("get member", err)
	}
	return &m, nil
}

// RoomRoles returns every member of roomID with its role (for the member cache).
func (s *Store) RoomRoles(ctx context.Context, roomID string) (map[string]string, error) {
	defer s.observe("room_roles", time.Now())
	cur, err := s.members.Find(ctx, bson.D{{Key: "roomId", Value: roomID}},
		options.Find().SetProjection(bson.D{{Key: "userId", Value: 1}, {Key: "role", Value: 1}}))
	if err != nil {
		return nil, wrap("members of "+roomID, err)
	}
	var ms []Member
	if err := cur.All(ctx, &ms); err != nil {
		return nil, wrap("read members of "+roomID, err)
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[m.UserID] = m.Role
	}
	return out, nil
}

// ListMembers pages through roomID's members ordered by user id.
func (s *Store) ListMembers(ctx context.Context, roomID, afterUserID string, limit int) ([]Member, bool, error) {
	defer s.observe("list_members", time.Now())
	filter := bson.D{{Key: "roomId", Value: roomID}}
	if afterUserID != "" {
		filter = append(filter, bson.E{Key: "userId", Value: bson.D{{Key: "$gt", Value: afterUserID}}})
	}
	cur, err := s.members.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "userId", Value: 1}}).SetLimit(int64(limit+1)))
	if err != nil {
		return nil, false, wrap("list members of "+roomID, err)
	}
	var ms []Member
	if err := cur.All(ctx, &ms); err != nil {
		return nil, false, wrap("read members of "+roomID, err)
	}
	more := len(ms) > limit
	if more {
		ms = ms[:limit]
	}
	return ms, more, nil
}

// CountMembers counts roomID's members.
func (s *Store) CountMembers(ctx context.Context, roomID string) (int64, error) {
	defer s.observe("count_members", time.Now())
	n, err := s.members.CountDocuments(ctx, bson.D{{Key: "roomId", Value: roomID}})
	return n, wrap("count members of "+roomID, err)
}

// UserMemberships returns every membership of userID.
func (s *Store) UserMemberships(ctx context.Context, userID string) ([]Member, error) {
	defer s.observe("user_memberships", time.Now())
	cur, err := s.members.Find(ctx, bson.D{{Key: "userId", Value: userID}})
	if err != nil {
		return nil, wrap("memberships of "+userID, err)
	}
	var ms []Member
	if err := cur.All(ctx, &ms); err != nil {
		return nil, wrap("read memberships of "+userID, err)
	}
	return ms, nil
}

// MarkRead moves userID's read marker of roomID forward to seq. It returns the
// membership after the call and whether the marker moved (it never moves back).
func (s *Store) MarkRead(ctx context.Context, roomID, userID string, seq int64, at time.Time) (*Member, bool, error) {
	defer s.observe("mark_read", time.Now())
	id := MemberID(roomID, userID)
	var m Member
	err := s.members.FindOneAndUpdate(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "lastReadSeq", Value: bson.D{{Key: "$lt", Value: seq}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lastReadSeq", Value: seq}, {Key: "lastReadAt", Value: at}}}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&m)
	if err == nil {
		return &m, true, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false, wrap("mark read "+id, err)
	}
	cur, err := s.Member(ctx, roomID, userID)
	if err != nil {
		return nil, false, err
	}
	return cur, false, nil
}

// AdvanceRead moves the read marker forward without reporting (a sender has read
// their own message). Missing memberships are ignored.
func (s *Store) AdvanceRead(ctx context.Context, roomID, userID string, seq int64) error {
	defer s.observe("advance_read", time.Now())
	_, err := s.members.UpdateOne(ctx, bson.D{{Key: "_id", Value: MemberID(roomID, userID)}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "lastReadSeq", Value: seq}}}})
	return wrap("advance read", err)
}

// ReadMark is a read marker to move forward: userID has read roomID up to Seq.
type ReadMark struct {
	RoomID, UserID string
	Seq            int64
}

// AdvanceReads is AdvanceRead for many markers in one round trip (one unordered
// bulk of $max updates). Missing memberships are ignored.
func (s *Store) AdvanceReads(ctx context.Context, marks []ReadMark) error {
	if len(marks) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, len(marks))
	for i, m := range marks {
		models[i] = mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: MemberID(m.RoomID, m.UserID)}}).
			SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: "lastReadSeq", Value: m.Seq}}}})
	}
	return wrap("advance reads", s.bulkUpdate(ctx, "advance_reads", s.members, models))
}

// SharedWith returns those of others that share at least one room with userID.
func (s *Store) SharedWith(ctx context.Context, userID string, others []string) ([]string, error) {
	defer s.observe("shared_rooms", time.Now())
	mine, err := s.UserMemberships(ctx, userID)
	if err != nil || len(mine) == 0 || len(others) == 0 {
		return nil, err
	}
	rooms := make([]string, len(mine))
	for i, m := range mine {
		rooms[i] = m.RoomID
	}
	cur, err := s.members.Find(ctx, bson.D{
		{Key: "userId", Value: bson.D{{Key: "$in", Value: others}}},
		{Key: "roomId", Value: bson.D{{Key: "$in", Value: rooms}}},
	}, options.Find().SetProjection(bson.D{{Key: "userId", Value: 1}}))
	if err != nil {
		return nil, wrap("shared rooms of "+userID, err)
	}
	var ms []Member
	if err := cur.All(ctx, &ms); err != nil {
		return nil, wrap("read shared rooms of "+userID, err)
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		if !seen[m.UserID] && m.UserID != userID {
			seen[m.UserID] = true
			out = append(out, m.UserID)
		}
	}
	return out, nil
}
