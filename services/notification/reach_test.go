package notification_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
	"github.com/talim/realtime/services/notification"
)

// TestReach_EventsGRPCAndCLI: the school sets defaults and the directory through
// ReachService, the user reads and changes their own preferences through client
// events, and `talim reach` shows and edits both.
func TestReach_EventsGRPCAndCLI(t *testing.T) {
	t.Parallel()
	e := start(t)
	rc := notificationv1.NewReachServiceClient(e.conn)
	ctx := ctxT(t)
	_, err := rc.SetSchool(ctx, &notificationv1.SetSchoolRequest{School: &notificationv1.School{
		SchoolId: "s1", TimeZone: "Europe/London", DefaultQuietHours: &notificationv1.QuietHours{Start: "21:00", End: "07:00"},
		Defaults: []*notificationv1.ChannelSetting{{Channel: "push", Category: "grade", Enabled: false}},
		Terms:    []*notificationv1.Term{{Name: "autumn", Start: "2026-09-01", End: "2026-12-18"}},
		Holidays: []*notificationv1.Holiday{{Name: "inset", Start: "2026-11-20"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.SetContact(ctx, &notificationv1.SetContactRequest{Contact: &notificationv1.Contact{UserId: "u1", SchoolId: "s1", Email: "u1@example.org"}}); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Preferences struct{ TimeZone string }
		Effective   []struct {
			Channel, Category string
			Enabled           bool
		}
		HasEmail bool
	}
	ok(t, e.cmd(t, "u1", "c1", "get-preferences", map[string]any{}), &v)
	if !v.HasEmail || len(v.Effective) != 27 {
		t.Fatalf("get-preferences: %+v", v)
	}
	for _, s := range v.Effective {
		if s.Channel == "push" && s.Category == "grade" && s.Enabled {
			t.Fatal("school default not applied")
		}
	}
	ok(t, e.cmd(t, "u1", "c1", "set-preferences", `{"timeZone":"Asia/Tokyo"}`), &v)
	errCode(t, e.cmd(t, "u1", "c1", "set-preferences", `{"timeZone":{"$gt":""}}`), "bad_request")
	got, err := rc.GetUserPreferences(ctx, &notificationv1.GetUserPreferencesRequest{UserId: "u1"})
	if err != nil || got.GetPreferences().GetTimeZone() != "Asia/Tokyo" || got.GetSchoolId() != "s1" {
		t.Fatalf("GetUserPreferences: %v %v", got, err)
	}

	// gRPC validation: bad ids, zones, dates and emails are InvalidArgument.
	for name, call := range map[string]func() error{
		"school id": func() error {
			_, err := rc.GetSchool(ctx, &notificationv1.GetSchoolRequest{SchoolId: `{"$gt":""}`})
			return err
		},
		"zone": func() error {
			_, err := rc.SetSchool(ctx, &notificationv1.SetSchoolRequest{School: &notificationv1.School{SchoolId: "s", TimeZone: "Nowhere/Else"}})
			return err
		},
		"term date": func() error {
			_, err := rc.SetSchool(ctx, &notificationv1.SetSchoolRequest{School: &notificationv1.School{SchoolId: "s", TimeZone: "UTC", Terms: []*notificationv1.Term{{Start: "2026-13-01", End: "2026-12-01"}}}})
			return err
		},
		"email": func() error {
			_, err := rc.SetContact(ctx, &notificationv1.SetContactRequest{Contact: &notificationv1.Contact{UserId: "u1", Email: "a@b.c\r\nBcc: x@y.z"}})
			return err
		},
		"user id": func() error {
			_, err := rc.GetUserPreferences(ctx, &notificationv1.GetUserPreferencesRequest{UserId: "$where"})
			return err
		},
		"safeguarding": func() error {
			_, err := rc.SetUserPreferences(ctx, &notificationv1.SetUserPreferencesRequest{UserId: "u1", Preferences: &notificationv1.UserPreferences{
				Settings: []*notificationv1.ChannelSetting{{Channel: "in-app", Category: "safeguarding", Enabled: false}}}})
			return err
		},
	} {
		if status.Code(call()) != codes.InvalidArgument {
			t.Errorf("%s: want InvalidArgument", name)
		}
	}

	// The CLI edits the user's preferences in place and shows the school.
	var out, errb bytes.Buffer
	code := notification.ReachCommand(context.Background(), []string{"prefs", "set", "--user", "u1", "--quiet", "22:00-06:30",
		"--set", "email:chat.direct=off", "--digest", "on", "--addr", e.svc.GRPCAddr(), "--token", testToken}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), `"22:00"`) || !strings.Contains(out.String(), `"Asia/Tokyo"`) {
		t.Fatalf("prefs set: %d %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	code = notification.ReachCommand(context.Background(), []string{"school", "get", "--school", "s1", "--addr", e.svc.GRPCAddr(), "--token", testToken}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), `"inset"`) || !strings.Contains(out.String(), `"Europe/London"`) {
		t.Fatalf("school get: %d %s %s", code, out.String(), errb.String())
	}
	if code := notification.ReachCommand(context.Background(), []string{"prefs", "set", "--user", "u1", "--quiet", "late",
		"--addr", e.svc.GRPCAddr(), "--token", testToken}, &out, &errb); code != 2 {
		t.Fatalf("bad --quiet: exit %d", code)
	}
}

// TestSend_UrgentNeedsRole: with urgent roles configured, an urgent send from
// another role is refused and changes nothing; from an allowed role it is stored
// urgent.
func TestSend_UrgentNeedsRole(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *notification.Config) { c.UrgentRoles = []string{"head"} })
	_, err := e.client.Send(ctxT(t), &notificationv1.SendRequest{Recipients: []string{"u1"}, Category: "safeguarding", Title: "x",
		IdempotencyKey: "k1", Urgent: true, SenderRole: "teacher"})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("teacher urgent: %v", err)
	}
	if lr := e.list(t, "u1", nil); len(lr.Notifications) != 0 {
		t.Fatalf("stored: %+v", lr)
	}
	e.send(t, &notificationv1.SendRequest{Recipients: []string{"u1"}, Category: "safeguarding", Title: "x", IdempotencyKey: "k2", Urgent: true, SenderRole: "head"})
	lr, err := e.client.List(ctxT(t), &notificationv1.ListRequest{UserId: "u1"})
	if err != nil || len(lr.GetNotifications()) != 1 || !lr.GetNotifications()[0].GetUrgent() {
		t.Fatalf("head urgent: %v %v", lr, err)
	}
}
