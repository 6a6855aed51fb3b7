package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/talim/realtime/services/chat/internal/safeguard/rules"
)

// ErrVersionConflict means a policy was changed since the version the caller read.
var ErrVersionConflict = errors.New("policy version conflict")

// Policy is one school's messaging policy (docs/protocol.md "Safeguarding").
// Every write bumps Version; writers give the version they read.
type Policy struct {
	School  string `bson:"_id"`
	Version int64  `bson:"version"`
	// DirectPairs are the role pairs that may open a direct room ("teacher:student",
	// unordered). A pair of users may when some role of one and some role of the
	// other form an allowed pair.
	DirectPairs []string `bson:"directPairs"`
	// SecondAdult applies to teacher–student direct rooms: "" (nothing), "include"
	// (SecondAdultIDs, or the leads when empty, are added as read-only members) or
	// "visible" (the leads may read the room through oversight; nothing added).
	SecondAdult    string   `bson:"secondAdult,omitempty"`
	SecondAdultIDs []string `bson:"secondAdultIds,omitempty"`
	// Leads are the safeguarding leads' user ids: they get reports and release
	// held messages.
	Leads []string `bson:"leads"`
	// Hours limits pupils' sends; nil means any time.
	Hours *SchoolHours `bson:"hours,omitempty"`
	// Rules are the content rules (package rules).
	Rules     []rules.Rule `bson:"rules"`
	UpdatedAt time.Time    `bson:"updatedAt"`
	UpdatedBy string       `bson:"updatedBy"`
}

// SchoolHours are the hours pupils may send, in the school's time zone.
type SchoolHours struct {
	TimeZone string `bson:"timeZone"` // IANA name, e.g. Europe/London
	Start    string `bson:"start"`    // "08:00"
	End      string `bson:"end"`      // "16:30"
	Days     []int  `bson:"days"`     // time.Weekday numbers (0 Sunday); empty: Monday to Friday
}

// Report is a report of a message (report-message, content rule flags).
type Report struct {
	ID         string    `bson:"_id" json:"reportId"`
	School     string    `bson:"school" json:"-"`
	RoomID     string    `bson:"roomId" json:"roomId"`
	MessageID  string    `bson:"messageId" json:"messageId"`
	ReporterID string    `bson:"reporterId" json:"reporterId"` // "rule:<id>" for content rules
	Reason     string    `bson:"reason" json:"reason"`
	Text       string    `bson:"text,omitempty" json:"text,omitempty"`
	Status     string    `bson:"status" json:"status"` // "open" or "closed"
	CreatedAt  time.Time `bson:"createdAt" json:"createdAt"`
}

// Held is a message a content rule holds: stored, delivered to nobody.
type Held struct {
	ID          string    `bson:"_id"` // the message id it gets when released
	School      string    `bson:"school"`
	RoomID      string    `bson:"roomId"`
	SenderID    string    `bson:"senderId"`
	SenderName  string    `bson:"senderName"`
	Type        string    `bson:"type"`
	Content     string    `bson:"content"`
	ClientMsgID string    `bson:"clientMsgId"`
	RuleID      string    `bson:"ruleId"`
	Status      string    `bson:"status"` // "held", "released", "rejected"
	CreatedAt   time.Time `bson:"createdAt"`
	DecidedBy   string    `bson:"decidedBy,omitempty"`
}

// SafeguardStore keeps policies, reports, blocks, held messages and the
// roles chat has seen in users' tokens. Every read is an _id point read or an
// equality filter (FerretDB pushes those down).
type SafeguardStore struct {
	policies, reports, blocks, held, roles *mongo.Collection
}

// NewSafeguard returns the safeguarding store on db.
func NewSafeguard(db *mongo.Database) *SafeguardStore {
	return &SafeguardStore{
		policies: db.Collection("safeguard_policies"), reports: db.Collection("safeguard_reports"),
		blocks: db.Collection("blocks"), held: db.Collection("held_messages"),
		roles: db.Collection("user_roles"),
	}
}

// Policy returns school's policy; ErrNotFound when none was ever set.
func (s *SafeguardStore) Policy(ctx context.Context, school string) (*Policy, error) {
	var p Policy
	if err := s.policies.FindOne(ctx, bson.D{{Key: "_id", Value: school}}).Decode(&p); err != nil {
		return nil, wrap("get policy "+school, err)
	}
	return &p, nil
}

// SetPolicy writes p as version expected+1 when the stored version is expected
// (0: none stored yet); ErrVersionConflict otherwise.
func (s *SafeguardStore) SetPolicy(ctx context.Context, p Policy, expected int64) (*Policy, error) {
	p.Version = expected + 1
	if expected == 0 {
		if _, err := s.policies.InsertOne(ctx, p); err != nil {
			if errors.Is(wrap("", err), ErrDuplicate) {
				return nil, ErrVersionConflict
			}
			return nil, wrap("insert policy", err)
		}
		return &p, nil
	}
	res, err := s.policies.ReplaceOne(ctx, bson.D{{Key: "_id", Value: p.School}, {Key: "version", Value: expected}}, p)
	if err != nil {
		return nil, wrap("replace policy", err)
	}
	if res.MatchedCount == 0 {
		return nil, ErrVersionConflict
	}
	return &p, nil
}

func pairID(a, b string) string { return a + "\x00" + b }

// SetBlock records (on) or removes (off) that blocker blocks blocked.
func (s *SafeguardStore) SetBlock(ctx context.Context, blocker, blocked string, on bool, at time.Time) error {
	id := pairID(blocker, blocked)
	if !on {
		_, err := s.blocks.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
		return wrap("unblock", err)
	}
	_, err := s.blocks.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "blocker", Value: blocker}, {Key: "blocked", Value: blocked}, {Key: "at", Value: at}}}},
		options.UpdateOne().SetUpsert(true))
	return wrap("block", err)
}

// Blocks reports whether blocker blocks blocked.
func (s *SafeguardStore) Blocks(ctx context.Context, blocker, blocked string) (bool, error) {
	err := s.blocks.FindOne(ctx, bson.D{{Key: "_id", Value: pairID(blocker, blocked)}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, wrap("get block", err)
}

// SetMuted records whether userID muted roomID on the membership;
// ErrNotFound when userID is not a member.
func (s *Store) SetMuted(ctx context.Context, roomID, userID string, muted bool) error {
	res, err := s.members.UpdateOne(ctx, bson.D{{Key: "_id", Value: MemberID(roomID, userID)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "muted", Value: muted}}}})
	if err != nil {
		return wrap("mute", err)
	}
	if res.MatchedCount == 0 {
		return wrap("mute", mongo.ErrNoDocuments)
	}
	return nil
}

// AddReport inserts r (idempotent on its id).
func (s *SafeguardStore) AddReport(ctx context.Context, r Report) (created bool, err error) {
	if _, err := s.reports.InsertOne(ctx, r); err != nil {
		if errors.Is(wrap("", err), ErrDuplicate) {
			return false, nil
		}
		return false, wrap("add report", err)
	}
	return true, nil
}

// Reports returns school's reports with status (all when empty), oldest first,
// at most limit.
func (s *SafeguardStore) Reports(ctx context.Context, school, status string, limit int) ([]Report, error) {
	f := bson.D{{Key: "school", Value: school}}
	if status != "" {
		f = append(f, bson.E{Key: "status", Value: status})
	}
	cur, err := s.reports.Find(ctx, f, options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap("list reports", err)
	}
	var out []Report
	if err := cur.All(ctx, &out); err != nil {
		return nil, wrap("list reports", err)
	}
	return out, nil
}

// CloseReport marks report id closed; ErrNotFound when it does not exist.
func (s *SafeguardStore) CloseReport(ctx context.Context, school, id string) error {
	res, err := s.reports.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "school", Value: school}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "closed"}}}})
	if err != nil {
		return wrap("close report", err)
	}
	if res.MatchedCount == 0 {
		return wrap("close report", mongo.ErrNoDocuments)
	}
	return nil
}

// Hold stores h (idempotent on its id: a retried send returns the first).
func (s *SafeguardStore) Hold(ctx context.Context, h Held) (*Held, error) {
	if _, err := s.held.InsertOne(ctx, h); err != nil {
		if errors.Is(wrap("", err), ErrDuplicate) {
			return s.HeldMessage(ctx, h.ID)
		}
		return nil, wrap("hold message", err)
	}
	return &h, nil
}

// HeldMessage returns held message id.
func (s *SafeguardStore) HeldMessage(ctx context.Context, id string) (*Held, error) {
	var h Held
	if err := s.held.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&h); err != nil {
		return nil, wrap("get held message", err)
	}
	return &h, nil
}

// HeldMessages returns school's messages still held, oldest first.
func (s *SafeguardStore) HeldMessages(ctx context.Context, school string, limit int) ([]Held, error) {
	cur, err := s.held.Find(ctx, bson.D{{Key: "school", Value: school}, {Key: "status", Value: "held"}},
		options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap("list held", err)
	}
	var out []Held
	if err := cur.All(ctx, &out); err != nil {
		return nil, wrap("list held", err)
	}
	return out, nil
}

// DecideHeld moves held message id from "held" to status (released or
// rejected); ErrNotFound when it is not held (any more).
func (s *SafeguardStore) DecideHeld(ctx context.Context, id, status, by string) error {
	res, err := s.held.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "status", Value: "held"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: status}, {Key: "decidedBy", Value: by}}}})
	if err != nil {
		return wrap("decide held", err)
	}
	if res.MatchedCount == 0 {
		return wrap("decide held "+id, mongo.ErrNoDocuments)
	}
	return nil
}

// SetRoles records the roles last seen in userID's token.
func (s *SafeguardStore) SetRoles(ctx context.Context, userID string, roles []string) error {
	_, err := s.roles.UpdateOne(ctx, bson.D{{Key: "_id", Value: userID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "roles", Value: roles}}}}, options.UpdateOne().SetUpsert(true))
	return wrap("set roles", err)
}

// Roles returns the roles last seen for userID (nil when never seen).
func (s *SafeguardStore) Roles(ctx context.Context, userID string) ([]string, error) {
	var d struct {
		Roles []string `bson:"roles"`
	}
	err := s.roles.FindOne(ctx, bson.D{{Key: "_id", Value: userID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("get roles", err)
	}
	return d.Roles, nil
}
