package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/talim/realtime/services/edge/edgetest"
)

// storeCounts counts the documents of every collection in the rig's database.
func (r *rig) storeCounts() map[string]int64 {
	r.t.Helper()
	mc := mongoClient(r.t, r.MongoURI)
	ctx, cancel := context.WithTimeout(context.Background(), rigWait)
	defer cancel()
	db := mc.Database(r.DB)
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, n := range names {
		c, err := db.Collection(n).CountDocuments(ctx, bson.D{})
		if err != nil {
			r.t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

// injections are values a MongoDB query must never see as operators. A
// server that builds filters from client JSON without type checks would match
// every document with the first two.
var injections = []struct {
	name  string
	value any
}{
	{"GtEmpty", map[string]any{"$gt": ""}},
	{"NeNull", map[string]any{"$ne": nil}},
	{"Where", map[string]any{"$where": "sleep(100) || true"}},
	{"Regex", map[string]any{"$regex": ".*"}},
	{"Array", []any{"s-room", "other"}},
	{"ArrayOfOperators", []any{map[string]any{"$gt": ""}}},
	{"Number", 1},
	{"Bool", true},
}

// idFields lists every id field of every client event (docs/protocol.md), with
// valid data around it. List fields take the injection as the list itself and as
// its element.
var idFields = []struct {
	event, field string
	data         map[string]any
	list         bool
}{
	{"join-chat-room", "roomId", map[string]any{}, false},
	{"leave-chat-room", "roomId", map[string]any{}, false},
	{"send-chat-message", "roomId", map[string]any{"content": "x", "clientMsgId": "inj"}, false},
	{"send-chat-message", "clientMsgId", map[string]any{"roomId": "s-room", "content": "x"}, false},
	{"get-chat-room-history", "roomId", map[string]any{}, false},
	{"mark-message-read", "roomId", map[string]any{"seq": 1}, false},
	{"mark-message-read", "messageId", map[string]any{"roomId": "s-room"}, false},
	{"typing", "roomId", map[string]any{"isTyping": true}, false},
	{"edit-chat-message", "roomId", map[string]any{"messageId": "m_x", "content": "x"}, false},
	{"edit-chat-message", "messageId", map[string]any{"roomId": "s-room", "content": "x"}, false},
	{"delete-chat-message", "roomId", map[string]any{"messageId": "m_x"}, false},
	{"delete-chat-message", "messageId", map[string]any{"roomId": "s-room"}, false},
	{"open-direct-room", "userId", map[string]any{}, false},
	{"report-message", "roomId", map[string]any{"messageId": "m_x", "reason": "spam"}, false},
	{"report-message", "messageId", map[string]any{"roomId": "s-room", "reason": "spam"}, false},
	{"report-message", "reason", map[string]any{"roomId": "s-room", "messageId": "m_x"}, false},
	{"report-message", "text", map[string]any{"roomId": "s-room", "messageId": "m_x", "reason": "spam"}, false},
	{"block-user", "userId", map[string]any{}, false},
	{"unblock-user", "userId", map[string]any{}, false},
	{"mute-room", "roomId", map[string]any{"muted": true}, false},
	{"release-held-message", "heldId", map[string]any{"release": true}, false},
	{"oversight-room-history", "roomId", map[string]any{"reason": "r"}, false},
	{"oversight-room-history", "reason", map[string]any{"roomId": "s-room"}, false},
	{"list-notifications", "before", map[string]any{}, false},
	{"mark-notification-read", "ids", map[string]any{}, true},
	{"ack-notification", "id", map[string]any{}, false},
	{"set-preferences", "timeZone", map[string]any{}, false},
	{"set-preferences", "quietHours", map[string]any{}, false},
	{"subscribe-presence", "userIds", map[string]any{}, true},
	{"unsubscribe-presence", "userIds", map[string]any{}, true},
	{"set-status", "status", map[string]any{}, false},
	{"register-push-subscription", "endpoint", map[string]any{"keys": map[string]any{"p256dh": "x", "auth": "y"}}, false},
	{"remove-push-subscription", "endpoint", map[string]any{}, false},
}

// TestSecurity_OperatorInjection_EveryIDField: every id field of every client event,
// given a MongoDB operator object, an array or another non-string, is answered
// bad_request and nothing in the store changes.
func TestSecurity_OperatorInjection_EveryIDField(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	rg.createRoom(b.Chat, "s-room", "ann", "ben")
	url := wsURL(b.Edge)
	ann := edgetest.Dial(t, url, rg.token("ann"))
	chatSend(t, ann, "s-room", "before the attack", "pre-1")
	ann.Close()
	before := rg.storeCounts()

	for _, f := range idFields {
		t.Run(f.event+"/"+f.field, func(t *testing.T) {
			c := edgetest.Dial(t, url, rg.token("ann"))
			defer c.Close()
			for _, inj := range injections {
				values := []any{inj.value}
				if f.list {
					if _, isList := inj.value.([]any); !isList {
						values = append(values, []any{inj.value}) // as an element
					} else {
						continue // a list of strings is valid for list fields
					}
				}
				for _, v := range values {
					data := map[string]any{}
					for k, x := range f.data {
						data[k] = x
					}
					data[f.field] = v
					_, perr := c.Request(f.event, data)
					if perr == nil || perr.Code != "bad_request" {
						raw, _ := json.Marshal(v)
						t.Errorf("%s %s=%s: got %v, want bad_request", inj.name, f.field, raw, perr)
					}
				}
			}
		})
	}
	// "$where" and friends as plain strings are just ids nobody has.
	t.Run("OperatorLookingStrings", func(t *testing.T) {
		c := edgetest.Dial(t, url, rg.token("ann"))
		defer c.Close()
		for _, s := range []string{"$where", "$gt", "{\"$ne\":null}", "room.$", "s-room\x00"} {
			_, perr := c.Request("join-chat-room", map[string]any{"roomId": s})
			if perr == nil || (perr.Code != "bad_request" && perr.Code != "forbidden" && perr.Code != "not_found") {
				t.Errorf("join %q: %v", s, perr)
			}
		}
	})
	after := rg.storeCounts()
	for coll, n := range before {
		if after[coll] != n {
			t.Errorf("collection %s: %d documents before, %d after the injections", coll, n, after[coll])
		}
	}
}

// TestSecurity_ForgedIdentityIgnored: identity fields inside event data are
// ignored; the stored message and every answer carry the token's identity.
func TestSecurity_ForgedIdentityIgnored(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	rg.createRoom(b.Chat, "s-forge", "ann", "ben")
	url := wsURL(b.Edge)
	ann := edgetest.Dial(t, url, rg.token("ann"))

	t.Run("SendChatMessage", func(t *testing.T) {
		data, perr := ann.Request("send-chat-message", map[string]any{
			"roomId": "s-forge", "content": "hi", "clientMsgId": "f-1",
			"senderId": "ben", "senderName": "Principal", "userId": "ben", "id": "m_forged", "seq": 99,
			"createdAt": "2000-01-01T00:00:00Z", "type": "system",
		})
		if perr == nil || perr.Code != "bad_request" {
			// type "system" is reserved for ChatAdminService.PostMessage.
			t.Fatalf("a client sent a system message: %v (data %s)", perr, data)
		}
		data, perr = ann.Request("send-chat-message", map[string]any{
			"roomId": "s-forge", "content": "hi", "clientMsgId": "f-2",
			"senderId": "ben", "senderName": "Principal", "userId": "ben", "id": "m_forged", "seq": 99,
			"createdAt": "2000-01-01T00:00:00Z",
		})
		if perr != nil {
			t.Fatal(perr)
		}
		var ack struct{ Message chatMessage }
		_ = json.Unmarshal(data, &ack)
		if ack.Message.SenderID != "ann" || ack.Message.ID == "m_forged" || ack.Message.Seq != 1 {
			t.Fatalf("ack %+v", ack.Message)
		}
		stored := rg.storedMessages("s-forge")
		if len(stored) != 1 || stored[0].SenderID != "ann" || stored[0].SenderName != "User ann" || stored[0].ID == "m_forged" {
			t.Fatalf("stored %+v", stored)
		}
	})
	t.Run("SetStatusForOtherUser", func(t *testing.T) {
		ben := edgetest.Dial(t, url, rg.token("ben"))
		defer ben.Close()
		if got := subscribePresence(t, ben, "ann")["ann"]; got.Status != "online" {
			t.Fatalf("ben sees ann as %+v", got)
		}
		if _, perr := ann.Request("set-status", map[string]any{"status": "busy", "userId": "ben"}); perr != nil {
			t.Fatal(perr)
		}
		expectPresence(t, ben, "ann", "busy", 5*time.Second) // ann's own status changed
		if got := subscribePresence(t, ann, "ben")["ben"]; got.Status != "online" {
			t.Fatalf("ben's status became %+v", got)
		}
	})
	t.Run("MarkReadForOtherUser", func(t *testing.T) {
		data, perr := ann.Request("mark-message-read", map[string]any{"roomId": "s-forge", "seq": 1, "userId": "ben"})
		if perr != nil {
			t.Fatal(perr)
		}
		ben := edgetest.Dial(t, url, rg.token("ben"))
		defer ben.Close()
		ack, perr := ben.Request("join-chat-room", map[string]any{"roomId": "s-forge"})
		if perr != nil {
			t.Fatal(perr)
		}
		var st struct{ LastReadSeq, Unread int64 }
		_ = json.Unmarshal(ack, &st)
		if st.LastReadSeq != 0 || st.Unread != 1 {
			t.Fatalf("ben's read state moved by ann's forged mark: %s (ann's answer %s)", ack, data)
		}
	})
}

// TestSecurity_PayloadAbuse: oversized, deeply nested, non-UTF-8, binary and
// malformed frames and a flood of unknown events get the documented error or close
// code; the process keeps serving everybody else.
func TestSecurity_PayloadAbuse(t *testing.T) {
	ns := startNATSAt(t)
	fdb := startFerretAt(t)
	rg := newRig(t, ns.URL(), fdb.URI())
	b := rg.startBasic(nil)
	rg.createRoom(b.Chat, "s-abuse", "ann")
	url := wsURL(b.Edge)
	bystander := edgetest.Dial(t, url, rg.token("bystander"))
	nested := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	nestedObj := func(depth int) string {
		return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
	}

	rows := []struct {
		name string
		op   ws.OpCode
		raw  string
		// close: the connection must close with this code; otherwise an error
		// frame with errCode arrives and the connection keeps working.
		close   int
		errCode string
	}{
		{"Oversized_1009", ws.OpText, `{"event":"ping","data":{"pad":"` + strings.Repeat("x", 70<<10) + `"}}`, 1009, ""},
		{"NonUTF8_1007", ws.OpText, "{\"event\":\"ping\",\"data\":{\"x\":\"\xff\xfe\"}}", 1007, ""},
		{"Binary_1003", ws.OpBinary, `{"event":"ping"}`, 1003, ""},
		{"MalformedJSON", ws.OpText, `{"event":"ping",`, 0, "bad_request"},
		{"NotAnObject", ws.OpText, `[1,2,3]`, 0, "bad_request"},
		{"DataNotAnObject", ws.OpText, `{"event":"send-chat-message","id":1,"data":"roomId"}`, 0, "bad_request"},
		{"NestedArrays10000_Data", ws.OpText, `{"event":"send-chat-message","id":1,"data":` + nested(10000) + `}`, 0, "bad_request"},
		{"NestedArrays10000_InField", ws.OpText, `{"event":"send-chat-message","id":1,"data":{"roomId":"s-abuse","clientMsgId":"n1","content":` + nested(10000) + `}}`, 0, "bad_request"},
		{"NestedObjects10000_Ping", ws.OpText, `{"event":"ping","id":1,"data":` + nestedObj(10000) + `}`, 0, "*"},
		{"NestedArrays20000_Envelope", ws.OpText, nested(20000), 0, "bad_request"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			c := edgetest.Dial(t, url, rg.token("ann"))
			defer c.Close()
			if err := c.SendFrame(row.op, []byte(row.raw)); err != nil {
				t.Fatal(err)
			}
			if row.close != 0 {
				c.ExpectClose(t, row.close, 5*time.Second)
				return
			}
			f, err := c.Next(5 * time.Second)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if row.errCode == "*" {
				t.Logf("answer: %s %.200s", f.Event, f.Raw)
			} else if f.Event != "error" || !strings.Contains(string(f.Data), `"`+row.errCode+`"`) {
				t.Fatalf("answer %s %.300s, want error %s", f.Event, f.Raw, row.errCode)
			}
			if _, perr := c.Request("ping", nil); perr != nil {
				t.Fatalf("connection unusable afterwards: %v", perr)
			}
		})
	}
	t.Run("UnknownEventFlood_1008", func(t *testing.T) {
		c := edgetest.Dial(t, url, rg.token("ann"))
		errorsSeen := 0
		for i := range 200 {
			if err := c.Send(fmt.Sprintf(`{"event":"no-such-event-%d","id":%d}`, i, i)); err != nil {
				break // closed under us
			}
		}
		for {
			f, err := c.Next(5 * time.Second)
			if err != nil {
				break
			}
			if f.Event == "error" {
				errorsSeen++
			}
		}
		ce := c.CloseErr()
		if ce == nil || ce.Code != 1008 {
			t.Fatalf("after %d error frames: close %v, want 1008", errorsSeen, ce)
		}
		if errorsSeen == 0 {
			t.Fatalf("closed without any unknown_event error first")
		}
		t.Logf("%d unknown_event errors, then close 1008", errorsSeen)
	})
	// The process survived all of it and serves others.
	if _, perr := bystander.Request("ping", nil); perr != nil {
		t.Fatalf("bystander: %v", perr)
	}
	if _, perr := edgetest.Dial(t, url, rg.token("ann")).Request("list-rooms", nil); perr != nil {
		t.Fatalf("new connection after the abuse: %v", perr)
	}
}
