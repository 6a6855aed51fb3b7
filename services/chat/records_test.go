package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/talim/realtime/pkg/grpcx"
	pkgrecords "github.com/talim/realtime/pkg/records"
	chatv1 "github.com/talim/realtime/proto/talim/chat/v1"
	sgv1 "github.com/talim/realtime/proto/talim/safeguarding/v1"
	"github.com/talim/realtime/services/chat/internal/audit"
)

// recordsClient dials RecordsService on the harness's first instance.
func (h *harness) recordsClient() sgv1.RecordsServiceClient {
	h.t.Helper()
	conn, err := grpc.NewClient(h.svcs[0].GRPCAddr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(grpcx.TokenCredentials{Token: testToken, Insecure: true}))
	if err != nil {
		h.t.Fatalf("grpc client: %v", err)
	}
	h.t.Cleanup(func() { _ = conn.Close() })
	return sgv1.NewRecordsServiceClient(conn)
}

// mongoDB opens the harness's database directly (to set up and tamper).
func (h *harness) mongoDB() *mongo.Database {
	h.t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(h.mongoURI))
	if err != nil {
		h.t.Fatalf("mongo: %v", err)
	}
	h.t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(h.db)
}

var lead = &sgv1.Actor{UserId: "lead1", Roles: []string{"safeguarding"}}

type keptMessage struct {
	message
	Versions []struct {
		Version    int64  `json:"version"`
		Content    string `json:"content"`
		Change     string `json:"change"`
		ReplacedBy string `json:"replacedBy"`
	} `json:"versions"`
	Redacted string `json:"redacted"`
}

type oversightPage struct {
	RoomID   string        `json:"roomId"`
	Messages []keptMessage `json:"messages"`
	HasMore  bool          `json:"hasMore"`
	AuditSeq int64         `json:"auditSeq"`
}

func TestOversight_ReadsEditedOriginalsAndDeletedTexts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("g", chatv1.RoomType_ROOM_TYPE_GROUP, "s1", "s2", "t1=teacher")
	s1, t1 := h.user("s1"), h.user("t1", "teacher")
	m1 := s1.send("g", "first words", "c1")
	m2 := s1.send("g", "something unkind", "c2")
	s1.send("g", "plain", "c3")
	s1.ok("edit-chat-message", map[string]any{"roomId": "g", "messageId": m1.ID, "content": "second words"}, nil)
	s1.ok("edit-chat-message", map[string]any{"roomId": "g", "messageId": m1.ID, "content": "third words"}, nil)
	t1.ok("delete-chat-message", map[string]any{"roomId": "g", "messageId": m2.ID}, nil)

	// Members still see only the current versions.
	var hist page
	s1.ok("get-chat-room-history", map[string]any{"roomId": "g"}, &hist)
	if hist.Messages[0].Content != "third words" || hist.Messages[1].Content != "" || !hist.Messages[1].Deleted {
		t.Fatalf("member history = %+v", hist.Messages)
	}

	// The lead (not a member) reads everything through the client event ...
	leadUser := h.user("lead1", "safeguarding")
	var p oversightPage
	leadUser.ok("oversight-room-history", map[string]any{"roomId": "g", "reason": "report from a parent"}, &p)
	check := func(p oversightPage) {
		t.Helper()
		if len(p.Messages) != 3 || p.AuditSeq == 0 {
			t.Fatalf("oversight page = %+v", p)
		}
		edited, deleted := p.Messages[0], p.Messages[1]
		if edited.Content != "third words" || len(edited.Versions) != 2 ||
			edited.Versions[0].Content != "first words" || edited.Versions[1].Content != "second words" ||
			edited.Versions[0].Change != "edit" || edited.Versions[0].ReplacedBy != "s1" {
			t.Fatalf("edited message as overseen = %+v", edited)
		}
		if !deleted.Deleted || len(deleted.Versions) != 1 || deleted.Versions[0].Content != "something unkind" ||
			deleted.Versions[0].Change != "delete" || deleted.Versions[0].ReplacedBy != "t1" {
			t.Fatalf("deleted message as overseen = %+v", deleted)
		}
	}
	check(p)
	// ... and through gRPC.
	rc := h.recordsClient()
	resp, err := rc.ReadRoomHistory(h.ctx(), &sgv1.ReadRoomHistoryRequest{Actor: lead, RoomId: "g", Reason: "follow-up"})
	if err != nil {
		t.Fatal(err)
	}
	var p2 oversightPage
	p2.AuditSeq = resp.GetAuditSeq()
	for _, m := range resp.GetMessagesJson() {
		p2.Messages = append(p2.Messages, decode[keptMessage](t, []byte(m)))
	}
	check(p2)
	// Paging backwards.
	leadUser.ok("oversight-room-history", map[string]any{"roomId": "g", "reason": "paging", "beforeSeq": 3, "limit": 1}, &p)
	if len(p.Messages) != 1 || p.Messages[0].Seq != 2 || !p.HasMore {
		t.Fatalf("page before 3 = %+v", p)
	}

	// Every read is in the audit log, with its reason, and the chain verifies.
	entries, err := audit.New(h.mongoDB()).Entries(h.ctx(), 1, 10)
	if err != nil || len(entries) != 3 {
		t.Fatalf("audit entries = %+v, %v", entries, err)
	}
	if e := entries[0]; e.Kind != "oversight.read" || e.Actor != "lead1" || e.Target != "g" || e.Reason != "report from a parent" {
		t.Fatalf("audit entry = %+v", e)
	}
	v, err := rc.VerifyAudit(h.ctx(), &sgv1.VerifyAuditRequest{})
	if err != nil || !v.GetOk() || v.GetEntries() != 3 {
		t.Fatalf("verify = %v, %v", v, err)
	}
}

func TestOversight_ForbiddenReasonRequiredAndInjection(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	h.room("g", chatv1.RoomType_ROOM_TYPE_GROUP, "s1", "t1=teacher")
	h.user("s1").send("g", "hello", "c1")
	rc := h.recordsClient()
	leadUser := h.user("lead1", "safeguarding")

	// Non-leads: members, teachers, owners alike.
	for _, u := range []*user{h.user("s1"), h.user("t1", "teacher"), h.user("admin", "admin", "owner")} {
		u.fail("forbidden", "oversight-room-history", map[string]any{"roomId": "g", "reason": "curious"})
		_, err := rc.ReadRoomHistory(h.ctx(), &sgv1.ReadRoomHistoryRequest{
			Actor: &sgv1.Actor{UserId: u.id, Roles: u.roles}, RoomId: "g", Reason: "curious"})
		wantCode(t, err, codes.PermissionDenied)
		_, err = exportRoom(h.ctx(), rc, &sgv1.ExportRoomRequest{Actor: &sgv1.Actor{UserId: u.id, Roles: u.roles}, RoomId: "g", Reason: "x"})
		wantCode(t, err, codes.PermissionDenied)
	}
	// Bad input from a lead: bad_request, and nothing audited.
	inj := map[string]any{"$gt": ""}
	for name, data := range map[string]any{
		"no reason":              map[string]any{"roomId": "g"},
		"blank reason":           map[string]any{"roomId": "g", "reason": "   "},
		"long reason":            map[string]any{"roomId": "g", "reason": strings.Repeat("x", 501)},
		"roomId operator":        map[string]any{"roomId": inj, "reason": "r"},
		"roomId dollar":          map[string]any{"roomId": "$gt", "reason": "r"},
		"reason operator":        map[string]any{"roomId": "g", "reason": inj},
		"beforeSeq operator":     map[string]any{"roomId": "g", "reason": "r", "beforeSeq": inj},
		"limit operator":         map[string]any{"roomId": "g", "reason": "r", "limit": inj},
		"beforeSeq zero":         map[string]any{"roomId": "g", "reason": "r", "beforeSeq": 0},
		"limit zero":             map[string]any{"roomId": "g", "reason": "r", "limit": 0},
		"data not an object":     `["g"]`,
		"roomId number":          map[string]any{"roomId": 7, "reason": "r"},
		"reason and extra junk":  `{"roomId":"g","reason":"r"`,
		"missing roomId":         map[string]any{"reason": "r"},
		"roomId with separators": map[string]any{"roomId": "g|s1", "reason": "r"},
	} {
		t.Run(name, func(t *testing.T) { leadUser.fail("bad_request", "oversight-room-history", data) })
	}
	leadUser.fail("not_found", "oversight-room-history", map[string]any{"roomId": "nope", "reason": "r"})
	for name, req := range map[string]*sgv1.ReadRoomHistoryRequest{
		"no reason":       {Actor: lead, RoomId: "g"},
		"room operator":   {Actor: lead, RoomId: `{"$gt":""}`, Reason: "r"},
		"room dollar":     {Actor: lead, RoomId: "$gt", Reason: "r"},
		"actor operator":  {Actor: &sgv1.Actor{UserId: `{"$gt":""}`, Roles: []string{"safeguarding"}}, RoomId: "g", Reason: "r"},
		"no actor":        {RoomId: "g", Reason: "r"},
		"negative before": {Actor: lead, RoomId: "g", Reason: "r", BeforeSeq: -1},
		"negative limit":  {Actor: lead, RoomId: "g", Reason: "r", Limit: -1},
	} {
		t.Run("grpc "+name, func(t *testing.T) {
			_, err := rc.ReadRoomHistory(h.ctx(), req)
			wantCode(t, err, codes.InvalidArgument)
		})
	}
	// Operator injection in every other new gRPC field.
	ctx := h.ctx()
	_, err := rc.SetLegalHold(ctx, &sgv1.SetLegalHoldRequest{Actor: lead, Scope: sgv1.HoldScope_HOLD_SCOPE_ROOM, Id: `{"$gt":""}`, Reason: "r"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = rc.SetLegalHold(ctx, &sgv1.SetLegalHoldRequest{Actor: lead, Id: "g", Reason: "r"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = rc.ReleaseLegalHold(ctx, &sgv1.ReleaseLegalHoldRequest{Actor: lead, Scope: sgv1.HoldScope_HOLD_SCOPE_USER, Id: "$ne", Reason: "r"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = rc.EraseUser(ctx, &sgv1.EraseUserRequest{Actor: lead, UserId: `{"$gt":""}`, Reason: "r"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = rc.EraseUser(ctx, &sgv1.EraseUserRequest{Actor: lead, UserId: "s1"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = exportUser(ctx, rc, &sgv1.ExportUserRequest{Actor: lead, UserId: "$where", Reason: "r"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = exportRoom(ctx, rc, &sgv1.ExportRoomRequest{Actor: lead, RoomId: `{"$gt":""}`, Reason: "r"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = rc.SetRetention(ctx, &sgv1.SetRetentionRequest{Actor: lead, Retention: &sgv1.RoomRetention{RoomType: chatv1.RoomType_ROOM_TYPE_GROUP, Days: -1}, Reason: "r"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = rc.SetRetention(ctx, &sgv1.SetRetentionRequest{Actor: lead, Retention: &sgv1.RoomRetention{Days: 3}, Reason: "r"})
	wantCode(t, err, codes.InvalidArgument)

	// None of it reached the audit log.
	v, err := rc.VerifyAudit(ctx, &sgv1.VerifyAuditRequest{})
	if err != nil || !v.GetOk() || v.GetEntries() != 0 {
		t.Fatalf("verify = %v, %v", v, err)
	}
}

func exportUser(ctx context.Context, rc sgv1.RecordsServiceClient, req *sgv1.ExportUserRequest) ([]pkgrecords.Line, error) {
	st, err := rc.ExportUser(ctx, req)
	if err != nil {
		return nil, err
	}
	return readLines(func() ([]string, error) {
		r, err := st.Recv()
		return r.GetLines(), err
	})
}

func exportRoom(ctx context.Context, rc sgv1.RecordsServiceClient, req *sgv1.ExportRoomRequest) ([]pkgrecords.Line, error) {
	st, err := rc.ExportRoom(ctx, req)
	if err != nil {
		return nil, err
	}
	return readLines(func() ([]string, error) {
		r, err := st.Recv()
		return r.GetLines(), err
	})
}

func readLines(recv func() ([]string, error)) ([]pkgrecords.Line, error) {
	var out []pkgrecords.Line
	for range 100000 {
		lines, err := recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		for _, l := range lines {
			var line pkgrecords.Line
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				return out, fmt.Errorf("bad line %s: %w", l, err)
			}
			out = append(out, line)
		}
	}
	return out, errors.New("too many chunks")
}

// age moves the createdAt of messages of room with seq <= through back by d.
func age(t *testing.T, db *mongo.Database, room string, through int64, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for seq := int64(1); seq <= through; seq++ {
		var m struct {
			ID        string    `bson:"_id"`
			CreatedAt time.Time `bson:"createdAt"`
		}
		if err := db.Collection("messages").FindOne(ctx, bson.D{{Key: "roomId", Value: room}, {Key: "seq", Value: seq}}).Decode(&m); err != nil {
			t.Fatalf("age %s/%d: %v", room, seq, err)
		}
		if _, err := db.Collection("messages").UpdateOne(ctx, bson.D{{Key: "_id", Value: m.ID}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "createdAt", Value: m.CreatedAt.Add(-d)}}}}); err != nil {
			t.Fatalf("age: %v", err)
		}
	}
}

func TestRetention_RemovesContentKeepsSeqAndHoldsWin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	for _, r := range []string{"free", "roomheld", "userheld"} {
		h.room(r, chatv1.RoomType_ROOM_TYPE_GROUP, "s1", "s2")
	}
	h.room("cls", chatv1.RoomType_ROOM_TYPE_CLASS, "s1", "s2")
	s1, s2 := h.user("s1"), h.user("s2")
	for _, r := range []string{"free", "roomheld", "userheld", "cls"} {
		for i := range 4 {
			u := s1
			if r == "userheld" && i%2 == 1 {
				u = s2
			}
			u.send(r, fmt.Sprintf("%s old %d", r, i), fmt.Sprintf("o%d", i))
		}
	}
	// An old edited message: its kept versions go too.
	first := s1.send("free", "to be edited", "e1")
	s1.ok("edit-chat-message", map[string]any{"roomId": "free", "messageId": first.ID, "content": "edited"}, nil)
	db := h.mongoDB()
	age(t, db, "free", 5, 10*24*time.Hour)
	for _, r := range []string{"roomheld", "userheld", "cls"} {
		age(t, db, r, 4, 10*24*time.Hour)
	}
	s1.send("free", "recent", "n1") // seq 6: recent, kept
	if n, _ := db.Collection("revisions").CountDocuments(h.ctx(), bson.D{}); n != 1 {
		t.Fatalf("revisions before retention = %d", n)
	}

	rc := h.recordsClient()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // several passes on a loaded machine
	defer cancel()
	if _, err := rc.SetRetention(ctx, &sgv1.SetRetentionRequest{Actor: lead, Reason: "school policy",
		Retention: &sgv1.RoomRetention{RoomType: chatv1.RoomType_ROOM_TYPE_GROUP, Days: 7}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.SetLegalHold(ctx, &sgv1.SetLegalHoldRequest{Actor: lead, Scope: sgv1.HoldScope_HOLD_SCOPE_ROOM, Id: "roomheld", Reason: "police request"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.SetLegalHold(ctx, &sgv1.SetLegalHoldRequest{Actor: lead, Scope: sgv1.HoldScope_HOLD_SCOPE_USER, Id: "s2", Reason: "investigation"}); err != nil {
		t.Fatal(err)
	}
	res, err := rc.RunRetention(ctx, &sgv1.RunRetentionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// free: 5 removed; userheld: s1's 2 removed, s2's 2 held; roomheld: 4 held; cls: no rule.
	if res.GetRemoved() != 7 || res.GetHeld() != 6 {
		t.Fatalf("retention = %v", res)
	}
	var hist page
	s1.ok("get-chat-room-history", map[string]any{"roomId": "free"}, &hist)
	if len(hist.Messages) != 6 {
		t.Fatalf("history = %+v", hist.Messages)
	}
	for i, m := range hist.Messages {
		if m.Seq != int64(i+1) {
			t.Fatalf("seq gap: message %d has seq %d", i, m.Seq)
		}
		if i < 5 && (m.Content != "" || !m.Deleted) {
			t.Fatalf("old message %d kept its content: %+v", m.Seq, m)
		}
	}
	if hist.Messages[5].Content != "recent" {
		t.Fatalf("recent message = %+v", hist.Messages[5])
	}
	if n, _ := db.Collection("revisions").CountDocuments(h.ctx(), bson.D{}); n != 0 {
		t.Fatalf("revisions after retention = %d", n)
	}
	contents := func(room string) []string {
		var p page
		s1.ok("get-chat-room-history", map[string]any{"roomId": room}, &p)
		var out []string
		for _, m := range p.Messages {
			out = append(out, m.Content)
		}
		return out
	}
	if got := contents("roomheld"); slices.Contains(got, "") {
		t.Fatalf("room under hold lost content: %q", got)
	}
	if got := contents("userheld"); !slices.Equal(got, []string{"", "userheld old 1", "", "userheld old 3"}) {
		t.Fatalf("user hold: %q", got)
	}
	if got := contents("cls"); slices.Contains(got, "") {
		t.Fatalf("class room without a rule lost content: %q", got)
	}
	// The room summary (list-rooms' lastMessage) lost the content too.
	var rooms struct {
		Rooms []struct {
			RoomID      string   `json:"roomId"`
			LastMessage *message `json:"lastMessage"`
		} `json:"rooms"`
	}
	s2.ok("list-rooms", map[string]any{}, &rooms)
	for _, r := range rooms.Rooms {
		if r.RoomID == "userheld" && r.LastMessage != nil && r.LastMessage.Content == "" {
			t.Fatalf("held last message summary emptied: %+v", r.LastMessage)
		}
	}

	// Releasing the holds lets the next pass remove what they kept.
	for _, rel := range []*sgv1.ReleaseLegalHoldRequest{
		{Actor: lead, Scope: sgv1.HoldScope_HOLD_SCOPE_ROOM, Id: "roomheld", Reason: "closed"},
		{Actor: lead, Scope: sgv1.HoldScope_HOLD_SCOPE_USER, Id: "s2", Reason: "closed"},
	} {
		if r, err := rc.ReleaseLegalHold(ctx, rel); err != nil || !r.GetReleased() {
			t.Fatalf("release: %v, %v", r, err)
		}
	}
	if res, err = rc.RunRetention(ctx, &sgv1.RunRetentionRequest{}); err != nil || res.GetRemoved() != 6 || res.GetHeld() != 0 {
		t.Fatalf("second pass = %v, %v", res, err)
	}
	for _, r := range []string{"roomheld", "userheld"} {
		if got := contents(r); !slices.Equal(got, []string{"", "", "", ""}) {
			t.Fatalf("%s after release: %q", r, got)
		}
	}
	// A third pass finds nothing to do; the audit log holds every change and verifies.
	if res, err = rc.RunRetention(ctx, &sgv1.RunRetentionRequest{}); err != nil || res.GetRemoved() != 0 {
		t.Fatalf("third pass = %v, %v", res, err)
	}
	v, err := rc.VerifyAudit(ctx, &sgv1.VerifyAuditRequest{})
	if err != nil || !v.GetOk() || v.GetEntries() != 5 {
		t.Fatalf("verify = %v, %v", v, err)
	}
}

// fakeOwner stands in for the notification and presence services (their real
// handlers run in services/talim/e2e).
type fakeOwner struct {
	kind   string
	lines  map[string]int // user → lines held
	erased []string
}

func (f *fakeOwner) Export(_ context.Context, userID, after string, limit int) ([]pkgrecords.Line, string, error) {
	start := 0
	if after != "" {
		fmt.Sscan(after, &start)
	}
	var out []pkgrecords.Line
	i := start
	for ; i < f.lines[userID] && len(out) < limit; i++ {
		out = append(out, pkgrecords.Line{Kind: f.kind, Data: json.RawMessage(fmt.Sprintf(`{"userId":%q,"n":%d}`, userID, i))})
	}
	if i >= f.lines[userID] {
		return out, "", nil
	}
	return out, fmt.Sprint(i), nil
}

func (f *fakeOwner) Erase(_ context.Context, userID string) (map[string]int64, error) {
	n := f.lines[userID]
	delete(f.lines, userID)
	f.erased = append(f.erased, userID)
	return map[string]int64{f.kind: int64(n)}, nil
}

func kinds(lines []pkgrecords.Line) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		out[l.Kind]++
	}
	return out
}

func TestExportAndErase_HoldsWin(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	notes := &fakeOwner{kind: "notification", lines: map[string]int{"s1": 450, "s2": 1}}
	pres := &fakeOwner{kind: "presence", lines: map[string]int{"s1": 1}}
	for svc, o := range map[string]*fakeOwner{"notification": notes, "presence": pres} {
		subs, err := pkgrecords.Serve(h.nc, svc, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
		})
	}
	h.room("a", chatv1.RoomType_ROOM_TYPE_GROUP, "s1", "s2")
	h.room("held", chatv1.RoomType_ROOM_TYPE_GROUP, "s1", "s2")
	h.room("left", chatv1.RoomType_ROOM_TYPE_GROUP, "s1", "s2")
	s1, s2 := h.user("s1"), h.user("s2")
	for i := range 3 {
		s1.send("a", fmt.Sprintf("a%d", i), fmt.Sprintf("a%d", i))
		s1.send("held", fmt.Sprintf("h%d", i), fmt.Sprintf("h%d", i))
	}
	m := s1.send("left", "before leaving", "l1")
	s1.ok("edit-chat-message", map[string]any{"roomId": "left", "messageId": m.ID, "content": "edited before leaving"}, nil)
	s1.ok("mark-message-read", map[string]any{"roomId": "a", "seq": 2}, nil)
	s2.send("a", "from s2", "b1")
	if _, err := h.admin.RemoveMembers(h.ctx(), &chatv1.RemoveMembersRequest{RoomId: "left", UserIds: []string{"s1"}}); err != nil {
		t.Fatal(err)
	}
	rc := h.recordsClient()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	lines, err := exportUser(ctx, rc, &sgv1.ExportUserRequest{Actor: &sgv1.Actor{UserId: "dpo"}, UserId: "s1", Reason: "subject access request 7"})
	if err != nil {
		t.Fatal(err)
	}
	got := kinds(lines)
	want := map[string]int{"export": 1, "membership": 2, "message": 7, "notification": 450, "presence": 1}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("export kinds = %v, want %v", got, want)
		}
	}
	for _, l := range lines {
		if l.Kind == "message" && strings.Contains(string(l.Data), "from s2") {
			t.Fatalf("export of s1 holds s2's message: %s", l.Data)
		}
		if l.Kind == "message" && strings.Contains(string(l.Data), "edited before leaving") && !strings.Contains(string(l.Data), `"content":"before leaving"`) {
			t.Fatalf("export lacks the earlier version: %s", l.Data)
		}
	}

	// A hold on the user keeps everything.
	if _, err := rc.SetLegalHold(ctx, &sgv1.SetLegalHoldRequest{Actor: lead, Scope: sgv1.HoldScope_HOLD_SCOPE_USER, Id: "s1", Reason: "investigation"}); err != nil {
		t.Fatal(err)
	}
	er, err := rc.EraseUser(ctx, &sgv1.EraseUserRequest{Actor: &sgv1.Actor{UserId: "dpo"}, UserId: "s1", Reason: "left the school"})
	if err != nil {
		t.Fatal(err)
	}
	if len(er.GetRemoved()) != 0 || len(er.GetKept()) == 0 || er.GetKept()[0].GetWhat() != "everything" || !strings.Contains(er.GetKept()[0].GetWhy(), "investigation") {
		t.Fatalf("erase under user hold = %v", er)
	}
	if len(notes.erased) != 0 || len(pres.erased) != 0 {
		t.Fatalf("erase under hold reached other services: %v %v", notes.erased, pres.erased)
	}
	// With only a room hold: everything but that room goes.
	if _, err := rc.ReleaseLegalHold(ctx, &sgv1.ReleaseLegalHoldRequest{Actor: lead, Scope: sgv1.HoldScope_HOLD_SCOPE_USER, Id: "s1", Reason: "done"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.SetLegalHold(ctx, &sgv1.SetLegalHoldRequest{Actor: lead, Scope: sgv1.HoldScope_HOLD_SCOPE_ROOM, Id: "held", Reason: "police"}); err != nil {
		t.Fatal(err)
	}
	er, err = rc.EraseUser(ctx, &sgv1.EraseUserRequest{Actor: &sgv1.Actor{UserId: "dpo"}, UserId: "s1", Reason: "left the school"})
	if err != nil {
		t.Fatal(err)
	}
	rm := er.GetRemoved()
	if rm["messages"] != 4 || rm["revisions"] != 1 || rm["memberships"] != 1 || rm["notification"] != 450 || rm["presence"] != 1 {
		t.Fatalf("removed = %v", rm)
	}
	var keptHeld bool
	for _, k := range er.GetKept() {
		if k.GetWhat() == "messages" && k.GetWhere() == "held" && k.GetCount() == 3 && strings.Contains(k.GetWhy(), "police") {
			keptHeld = true
		}
	}
	if !keptHeld {
		t.Fatalf("kept = %v", er.GetKept())
	}
	// Others' view: s1's messages are tombstones without a name, seq unchanged; the held room is intact.
	var p page
	s2.ok("get-chat-room-history", map[string]any{"roomId": "a"}, &p)
	if len(p.Messages) != 4 {
		t.Fatalf("history = %+v", p.Messages)
	}
	for i, m := range p.Messages[:3] {
		if m.Seq != int64(i+1) || m.Content != "" || m.SenderName != "" || !m.Deleted {
			t.Fatalf("erased message = %+v", m)
		}
	}
	if p.Messages[3].Content != "from s2" {
		t.Fatalf("s2's message = %+v", p.Messages[3])
	}
	s2.ok("get-chat-room-history", map[string]any{"roomId": "held"}, &p)
	if len(p.Messages) != 3 || p.Messages[0].Content != "h0" {
		t.Fatalf("held room = %+v", p.Messages)
	}
	// Nothing left to export outside the held room.
	lines, err = exportUser(ctx, rc, &sgv1.ExportUserRequest{Actor: &sgv1.Actor{UserId: "dpo"}, UserId: "s1", Reason: "check"})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		s := string(l.Data)
		if l.Kind == "notification" || l.Kind == "presence" || (l.Kind == "membership" && !strings.Contains(s, `"roomId":"held"`)) ||
			(l.Kind == "message" && !strings.Contains(s, `"roomId":"held"`) && (strings.Contains(s, "before leaving") || strings.Contains(s, `"senderName":"Name s1"`))) {
			t.Fatalf("left after erasure: %s %s", l.Kind, s)
		}
	}
	v, err := rc.VerifyAudit(ctx, &sgv1.VerifyAuditRequest{})
	if err != nil || !v.GetOk() {
		t.Fatalf("verify = %v, %v", v, err)
	}
}
