package store

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"time"
)

// Room types and member roles (docs/protocol.md, "Chat"; "open" from chat.proto).
const (
	TypeDirect       = "direct"
	TypeGroup        = "group"
	TypeClass        = "class"
	TypeAnnouncement = "announcement"
	TypeOpen         = "open"

	RoleOwner    = "owner"
	RoleTeacher  = "teacher"
	RoleMember   = "member"
	RoleReadonly = "readonly"

	// MessageTypeSystem is the type of messages posted by internal services.
	MessageTypeSystem = "system"
)

// Room is a rooms document.
type Room struct {
	ID             string    `bson:"_id"`
	Type           string    `bson:"type"`
	Name           string    `bson:"name"`
	Archived       bool      `bson:"archived"`
	LastSeq        int64     `bson:"lastSeq"`
	LastMessage    *Message  `bson:"lastMessage,omitempty"`
	LastActivityAt time.Time `bson:"lastActivityAt"`
	CreatedAt      time.Time `bson:"createdAt"`
}

// Member is a memberships document.
type Member struct {
	ID          string     `bson:"_id"`
	RoomID      string     `bson:"roomId"`
	UserID      string     `bson:"userId"`
	Role        string     `bson:"role"`
	LastReadSeq int64      `bson:"lastReadSeq"`
	LastReadAt  *time.Time `bson:"lastReadAt,omitempty"`
	JoinedAt    time.Time  `bson:"joinedAt"`
	// Muted is the member's mute-room choice (docs/protocol.md "Safeguarding").
	Muted bool `bson:"muted,omitempty"`
}

// MemberID is the _id of userID's membership of roomID. Ids never contain '|'.
func MemberID(roomID, userID string) string { return roomID + "|" + userID }

// Message is a messages document; its JSON form is the protocol's message object.
type Message struct {
	ID          string     `bson:"_id"`
	RoomID      string     `bson:"roomId"`
	Seq         int64      `bson:"seq"`
	SenderID    string     `bson:"senderId"`
	SenderName  string     `bson:"senderName"`
	Type        string     `bson:"type"`
	Content     string     `bson:"content"`
	ClientMsgID string     `bson:"clientMsgId"`
	CreatedAt   time.Time  `bson:"createdAt"`
	EditedAt    *time.Time `bson:"editedAt"`
	Deleted     bool       `bson:"deleted"`
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// MessageID derives the message id from its idempotency triple, so a retry maps to
// the same document and a duplicate is found with a point read. Ids are validated
// to never contain NUL, which keeps the encoding unambiguous.
func MessageID(roomID, senderID, clientMsgID string) string {
	h := sha256.Sum256([]byte(roomID + "\x00" + senderID + "\x00" + clientMsgID))
	return "m_" + idEncoding.EncodeToString(h[:16])
}

// TimeFormat is the protocol's timestamp format (UTC, milliseconds).
const TimeFormat = "2006-01-02T15:04:05.000Z"

// Now returns the current time truncated to what MongoDB stores (milliseconds), so
// a value acknowledged before the write equals the one read back later.
func Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// FormatTime formats t as the protocol does.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

type messageJSON struct {
	ID          string  `json:"id"`
	RoomID      string  `json:"roomId"`
	Seq         int64   `json:"seq"`
	SenderID    string  `json:"senderId"`
	SenderName  string  `json:"senderName"`
	Type        string  `json:"type"`
	Content     string  `json:"content"`
	ClientMsgID string  `json:"clientMsgId"`
	CreatedAt   string  `json:"createdAt"`
	EditedAt    *string `json:"editedAt"`
	Deleted     bool    `json:"deleted"`
}

// MarshalJSON encodes the protocol message object.
func (m Message) MarshalJSON() ([]byte, error) {
	j := messageJSON{ID: m.ID, RoomID: m.RoomID, Seq: m.Seq, SenderID: m.SenderID, SenderName: m.SenderName,
		Type: m.Type, Content: m.Content, ClientMsgID: m.ClientMsgID, CreatedAt: FormatTime(m.CreatedAt), Deleted: m.Deleted}
	if m.EditedAt != nil {
		s := FormatTime(*m.EditedAt)
		j.EditedAt = &s
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the protocol message object (tests and clients).
func (m *Message) UnmarshalJSON(b []byte) error {
	var j messageJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	created, err := time.Parse(time.RFC3339Nano, j.CreatedAt)
	if err != nil && j.CreatedAt != "" {
		return err
	}
	*m = Message{ID: j.ID, RoomID: j.RoomID, Seq: j.Seq, SenderID: j.SenderID, SenderName: j.SenderName,
		Type: j.Type, Content: j.Content, ClientMsgID: j.ClientMsgID, CreatedAt: created, Deleted: j.Deleted}
	if j.EditedAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *j.EditedAt)
		if err != nil {
			return err
		}
		m.EditedAt = &t
	}
	return nil
}
