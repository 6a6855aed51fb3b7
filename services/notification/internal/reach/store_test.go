package reach

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/devstack/testkit"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func newService(t *testing.T) (*Service, *Store) {
	t.Helper()
	_, db := testkit.MongoClient(t)
	st := NewStore(db)
	return NewService(st), st
}

func cmd(user, event, data string) *edgev1.Command {
	return &edgev1.Command{Identity: &edgev1.Identity{UserId: user}, ConnectionId: "c1", Event: event, Data: []byte(data)}
}

// call runs a client event through the handler; it returns the view or the protocol error code.
func call(t *testing.T, s *Service, user, event, data string) (View, string) {
	t.Helper()
	h := s.handleGet
	if event == EventSetPreferences {
		h = s.handleSet
	}
	r, err := h(context.Background(), cmd(user, event, data))
	if err != nil {
		if ce, ok := command.AsError(err); ok {
			return View{}, ce.Code
		}
		t.Fatalf("%s %s: %v", event, data, err)
	}
	var v View
	if err := json.Unmarshal(r.GetData(), &v); err != nil {
		t.Fatal(err)
	}
	return v, ""
}

func effective(v View, ch, cat string) bool {
	for _, s := range v.Effective {
		if s.Channel == ch && s.Category == cat {
			return s.Enabled
		}
	}
	panic("missing " + ch + "/" + cat)
}

func TestPreferences_GetSetAndSchoolDefaults(t *testing.T) {
	t.Parallel()
	s, st := newService(t)
	ctx := context.Background()
	if err := st.SetSchool(ctx, &School{ID: "s1", TimeZone: "Europe/London", DigestGuardiansByDefault: true,
		Defaults: []Setting{{ChannelPush, CategoryGrade, false}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetContact(ctx, "alice", Contact{SchoolID: "s1", Email: "alice@example.org", Guardian: true}); err != nil {
		t.Fatal(err)
	}
	v, code := call(t, s, "alice", EventGetPreferences, `{}`)
	if code != "" || effective(v, ChannelPush, CategoryGrade) || !effective(v, ChannelPush, CategoryAssignment) || !v.Digest || !v.HasEmail {
		t.Fatalf("defaults: %s %+v", code, v)
	}
	v, code = call(t, s, "alice", EventSetPreferences,
		`{"timeZone":"Asia/Tokyo","quietHours":{"start":"22:00","end":"06:30"},"settings":[{"channel":"push","category":"grade","enabled":true},{"channel":"email","category":"chat.direct","enabled":false}],"digest":false}`)
	if code != "" || !effective(v, ChannelPush, CategoryGrade) || effective(v, ChannelEmail, CategoryChatDirect) || v.Digest ||
		v.Preferences.TimeZone != "Asia/Tokyo" || v.Preferences.QuietHours.Start != "22:00" {
		t.Fatalf("after set: %s %+v", code, v)
	}
	// Partial update: only the fields given change; a setting replaces its entry.
	v, _ = call(t, s, "alice", EventSetPreferences, `{"settings":[{"channel":"push","category":"grade","enabled":false}],"quietHours":null,"digest":null}`)
	if v.Preferences.TimeZone != "Asia/Tokyo" || v.Preferences.QuietHours != nil || len(v.Preferences.Settings) != 2 || effective(v, ChannelPush, CategoryGrade) ||
		v.Preferences.Digest != nil || !v.Digest {
		t.Fatalf("after partial set: %+v", v)
	}
	// The school's contact write leaves the user's preferences alone, and vice versa.
	if err := st.SetContact(ctx, "alice", Contact{SchoolID: "s1", Email: "new@example.org"}); err != nil {
		t.Fatal(err)
	}
	u, err := st.User(ctx, "alice")
	if err != nil || u.Prefs.TimeZone != "Asia/Tokyo" || u.Contact.Email != "new@example.org" {
		t.Fatalf("user doc: %+v %v", u, err)
	}
}

func TestPreferences_BadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s, st := newService(t)
	if _, code := call(t, s, "bob", EventSetPreferences, `{"timeZone":"Europe/Paris"}`); code != "" {
		t.Fatal(code)
	}
	bad := []string{
		`{"timeZone":{"$gt":""}}`, `{"quietHours":{"$gt":""}}`, `{"quietHours":{"start":{"$gt":""},"end":"07:00"}}`,
		`{"quietHoursOff":{"$ne":false}}`, `{"settings":{"$gt":""}}`, `{"settings":[{"$gt":""}]}`,
		`{"settings":[{"channel":{"$gt":""},"category":"grade","enabled":true}]}`,
		`{"settings":[{"channel":"push","category":{"$gt":""},"enabled":true}]}`,
		`{"settings":[{"channel":"push","category":"grade","enabled":{"$ne":1}}]}`,
		`{"settings":[{"channel":"$where","category":"grade","enabled":true}]}`,
		`{"settings":[{"channel":"in-app","category":"safeguarding","enabled":false}]}`,
		`{"digest":{"$gt":""}}`, `{"digest":"yes"}`, `{"timeZone":"Mars/Base"}`, `{"timeZone":123}`,
		`{"quietHours":{"start":"25:00","end":"07:00"}}`, `{"quietHours":{"start":"21:00","end":"07:00","x":1}}`,
		`[1]`, `"x"`, `{"settings":[` + strings.Repeat(`{"channel":"push","category":"grade","enabled":true},`, 70) + `{}]}`,
	}
	for _, d := range bad {
		if _, code := call(t, s, "bob", EventSetPreferences, d); code != "bad_request" {
			t.Errorf("%s: code %q, want bad_request", d, code)
		}
	}
	u, err := st.User(context.Background(), "bob")
	if err != nil || u.Prefs.TimeZone != "Europe/Paris" || len(u.Prefs.Settings) != 0 || u.Prefs.Digest != nil {
		t.Fatalf("changed: %+v %v", u, err)
	}
	// Someone else's preferences: the data has no user field; one sent is ignored
	// and the command acts on the authenticated user only.
	if _, code := call(t, s, "mallory", EventSetPreferences, `{"userId":"bob","timeZone":"Asia/Tokyo"}`); code != "" {
		t.Fatal(code)
	}
	if u, _ := st.User(context.Background(), "bob"); u.Prefs.TimeZone != "Europe/Paris" {
		t.Fatalf("mallory changed bob: %+v", u)
	}
	if _, code := call(t, s, `{"$gt":""}`, EventGetPreferences, `{}`); code != "bad_request" {
		t.Fatalf("injected identity: %q", code)
	}
}

func TestGate_Decide_Store(t *testing.T) {
	t.Parallel()
	s, st := newService(t)
	ctx := context.Background()
	if err := st.SetSchool(ctx, &School{ID: "s1", TimeZone: "Europe/London", DefaultQuietHours: &QuietHours{Start: "21:00", End: "07:00"},
		Holidays: []Holiday{{Name: "Christmas", Start: "2026-12-24", End: "2026-12-26"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetContact(ctx, "carol", Contact{SchoolID: "s1"}); err != nil {
		t.Fatal(err)
	}
	g := NewGate(st)
	ok, nb, err := g.Decide(ctx, "carol", ChannelEmail, "assignment", false, utc("2026-12-24T12:00:00Z"))
	if err != nil || !ok || !nb.Equal(utc("2026-12-27T07:00:00Z")) {
		t.Fatalf("holiday: %v %s %v", ok, nb, err)
	}
	// The user changes zone through the client event: the next decision follows.
	if _, code := call(t, s, "carol", EventSetPreferences, `{"timeZone":"America/New_York"}`); code != "" {
		t.Fatal(code)
	}
	ok, nb, err = g.Decide(ctx, "carol", ChannelPush, "assignment", false, utc("2026-06-10T22:00:00Z")) // 18:00 EDT
	if err != nil || !ok || !nb.IsZero() {
		t.Fatalf("after zone change: %v %s %v", ok, nb, err)
	}
	// A user nobody configured: the default school (UTC, no quiet hours) sends now.
	if ok, nb, err := g.Decide(ctx, "nobody", ChannelPush, "x", false, time.Now()); err != nil || !ok || !nb.IsZero() {
		t.Fatalf("unknown user: %v %s %v", ok, nb, err)
	}
	for _, bad := range [][2]string{{`{"$gt":""}`, ChannelPush}, {"carol", "sms"}, {"", ChannelPush}} {
		if _, _, err := g.Decide(ctx, bad[0], bad[1], "x", false, time.Now()); err == nil {
			t.Errorf("Decide(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
