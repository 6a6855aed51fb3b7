package reach

import (
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func london() *School {
	return &School{ID: "s1", TimeZone: "Europe/London", DefaultQuietHours: &QuietHours{Start: "21:00", End: "07:00"}}
}

func TestDecide_QuietHours(t *testing.T) {
	t.Parallel()
	term := func(s *School) *School {
		s.Terms = []Term{{Name: "autumn 1", Start: "2026-09-01", End: "2026-10-23"}, {Name: "autumn 2", Start: "2026-11-02", End: "2026-12-18"}}
		s.Holidays = []Holiday{{Name: "inset", Start: "2026-11-20"}}
		return s
	}
	cases := []struct {
		name     string
		prefs    Prefs
		school   *School
		channel  string
		category string
		urgent   bool
		now      string
		allowed  bool
		want     string // "" = now
	}{
		{name: "day time sends now", school: london(), channel: ChannelPush, now: "2026-06-10T12:00:00Z", allowed: true},
		{name: "evening waits until 07:00 BST", school: london(), channel: ChannelPush, now: "2026-06-10T21:30:00Z", allowed: true, want: "2026-06-11T06:00:00Z"},
		{name: "early morning waits", school: london(), channel: ChannelEmail, now: "2026-06-11T05:00:00Z", allowed: true, want: "2026-06-11T06:00:00Z"},
		{name: "quiet end is exclusive", school: london(), channel: ChannelPush, now: "2026-06-11T06:00:00Z", allowed: true},
		// Clocks go forward on 2026-03-29 at 01:00 UTC: 07:00 BST is 06:00 UTC.
		{name: "DST starts overnight", school: london(), channel: ChannelPush, now: "2026-03-28T22:00:00Z", allowed: true, want: "2026-03-29T06:00:00Z"},
		// Clocks go back on 2026-10-25 at 01:00 UTC: 07:00 GMT is 07:00 UTC.
		{name: "DST ends overnight", school: london(), channel: ChannelPush, now: "2026-10-24T20:30:00Z", allowed: true, want: "2026-10-25T07:00:00Z"},
		{name: "before DST ends 20:30 local is not quiet", school: london(), channel: ChannelPush, now: "2026-10-24T19:30:00Z", allowed: true},
		// Quiet ending at 01:30 local on the night the clocks go forward: 01:30
		// does not exist that night, the window ends at 02:30 BST (01:30 UTC).
		{name: "quiet end inside the DST gap", prefs: Prefs{QuietHours: &QuietHours{Start: "22:00", End: "01:30"}}, school: london(),
			channel: ChannelPush, now: "2026-03-29T00:45:00Z", allowed: true, want: "2026-03-29T01:30:00Z"},
		// Clocks go back: the wall clock shows 01:00-02:00 twice, and quiet hours
		// 00:30-01:30 cover both passes: they end at 01:30 GMT (01:30 UTC), not 01:30 BST.
		{name: "quiet end inside the repeated hour", prefs: Prefs{QuietHours: &QuietHours{Start: "00:30", End: "01:30"}}, school: london(),
			channel: ChannelPush, now: "2026-10-24T23:45:00Z", allowed: true, want: "2026-10-25T01:30:00Z"},
		{name: "second pass of the repeated hour is quiet too", prefs: Prefs{QuietHours: &QuietHours{Start: "00:30", End: "01:30"}}, school: london(),
			channel: ChannelPush, now: "2026-10-25T01:10:00Z", allowed: true, want: "2026-10-25T01:30:00Z"},
		{name: "user zone overrides school zone", prefs: Prefs{TimeZone: "Asia/Tokyo"}, school: london(), channel: ChannelPush,
			now: "2026-06-10T20:30:00Z", allowed: true, want: "2026-06-10T22:00:00Z"},
		{name: "user switched quiet hours off", prefs: Prefs{QuietHoursOff: true}, school: london(), channel: ChannelPush, now: "2026-06-10T23:00:00Z", allowed: true},
		{name: "daytime quiet window", prefs: Prefs{QuietHours: &QuietHours{Start: "09:00", End: "15:30"}}, school: london(), channel: ChannelPush,
			now: "2026-06-10T10:00:00Z", allowed: true, want: "2026-06-10T14:30:00Z"},
		{name: "urgent ignores quiet hours", school: london(), channel: ChannelPush, urgent: true, now: "2026-06-10T23:00:00Z", allowed: true},
		{name: "in-app is never delayed", school: london(), channel: ChannelInApp, now: "2026-06-10T23:00:00Z", allowed: true},
		{name: "channel switched off", prefs: Prefs{Settings: []Setting{{ChannelPush, CategoryGeneral, false}}}, school: london(),
			channel: ChannelPush, now: "2026-06-10T12:00:00Z", allowed: false},
		{name: "urgent still respects off", prefs: Prefs{Settings: []Setting{{ChannelPush, CategoryGeneral, false}}}, school: london(),
			channel: ChannelPush, urgent: true, now: "2026-06-10T12:00:00Z", allowed: false},
		{name: "school default off, user on", prefs: Prefs{Settings: []Setting{{ChannelEmail, CategoryGrade, true}}},
			school: &School{ID: "s", TimeZone: "UTC", Defaults: []Setting{{ChannelEmail, CategoryGrade, false}}}, channel: ChannelEmail, category: CategoryGrade,
			now: "2026-06-10T12:00:00Z", allowed: true},
		{name: "school default off", school: &School{ID: "s", TimeZone: "UTC", Defaults: []Setting{{ChannelEmail, CategoryGrade, false}}},
			channel: ChannelEmail, category: CategoryGrade, now: "2026-06-10T12:00:00Z", allowed: false},
		{name: "holiday waits for the next school morning", school: term(london()), channel: ChannelPush, now: "2026-11-20T10:00:00Z",
			allowed: true, want: "2026-11-21T07:00:00Z"},
		{name: "half term waits for the next term", school: term(london()), channel: ChannelPush, now: "2026-10-28T12:00:00Z",
			allowed: true, want: "2026-11-02T07:00:00Z"},
		{name: "after the last term nothing is held", school: term(london()), channel: ChannelPush, now: "2027-01-10T12:00:00Z", allowed: true},
		{name: "urgent on a holiday", school: term(london()), channel: ChannelPush, urgent: true, now: "2026-11-20T10:00:00Z", allowed: true},
		// The school date decides: 23:30 UTC on 19 Nov is already 20 Nov (the
		// holiday) in Tokyo but still 19 Nov at the London school, and 08:30 in
		// Tokyo is not quiet: send now.
		{name: "holiday in the school's zone, not the user's (before)", prefs: Prefs{TimeZone: "Asia/Tokyo"}, school: term(london()), channel: ChannelPush,
			now: "2026-11-19T23:30:00Z", allowed: true},
		// 23:30 UTC on 20 Nov is 21 Nov in Tokyo but still the holiday in London:
		// wait for London midnight, 09:00 in Tokyo.
		{name: "holiday in the school's zone, not the user's (after)", prefs: Prefs{TimeZone: "Asia/Tokyo"}, school: term(london()), channel: ChannelPush,
			now: "2026-11-20T23:30:00Z", allowed: true, want: "2026-11-21T00:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := utc(tc.now)
			cat := tc.category
			if cat == "" {
				cat = "unlisted-category"
			}
			allowed, nb, err := decide(&tc.prefs, tc.school, tc.channel, NormalizeCategory(cat), tc.urgent, now)
			if err != nil {
				t.Fatal(err)
			}
			if allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v", allowed, tc.allowed)
			}
			var want time.Time
			if tc.want != "" {
				want = utc(tc.want)
			}
			if !nb.Equal(want) {
				t.Fatalf("notBefore = %s, want %s", nb.UTC().Format(time.RFC3339), tc.want)
			}
		})
	}
}

// TestDecide_TimeZoneChange: the same instant gives another answer once the user
// moves zone, and a wait computed before the move is recomputed after it.
func TestDecide_TimeZoneChange(t *testing.T) {
	t.Parallel()
	p := &Prefs{TimeZone: "Europe/London"}
	now := utc("2026-06-10T20:30:00Z") // 21:30 BST: quiet
	_, nb, _ := decide(p, london(), ChannelPush, CategoryGeneral, false, now)
	if !nb.Equal(utc("2026-06-11T06:00:00Z")) {
		t.Fatalf("London: %s", nb)
	}
	p.TimeZone = "America/New_York" // 16:30 EDT: not quiet
	ok, nb, _ := decide(p, london(), ChannelPush, CategoryGeneral, false, now)
	if !ok || !nb.IsZero() {
		t.Fatalf("New York: %v %s", ok, nb)
	}
	p.TimeZone = "Asia/Kolkata" // 02:00 IST: quiet until 07:00 IST = 01:30 UTC
	_, nb, _ = decide(p, london(), ChannelPush, CategoryGeneral, false, now)
	if !nb.Equal(utc("2026-06-11T01:30:00Z")) {
		t.Fatalf("Kolkata: %s", nb)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	bad := []Prefs{
		{TimeZone: "Mars/Olympus"}, {TimeZone: "Local"}, {TimeZone: "../../etc/passwd"},
		{QuietHours: &QuietHours{Start: "24:00", End: "07:00"}}, {QuietHours: &QuietHours{Start: "7:00", End: "07:00"}},
		{QuietHours: &QuietHours{Start: "07:00", End: "07:00"}}, {QuietHours: &QuietHours{Start: `{"$gt":""}`, End: "07:00"}},
		{Settings: []Setting{{Channel: "sms", Category: CategoryGeneral}}}, {Settings: []Setting{{Channel: ChannelPush, Category: "$gt"}}},
		{Settings: []Setting{{Channel: ChannelInApp, Category: CategorySafeguarding, Enabled: false}}},
	}
	for i, p := range bad {
		if err := ValidatePrefs(&p); err == nil {
			t.Errorf("case %d: %+v accepted", i, p)
		}
	}
	badSchools := []School{
		{ID: "s", TimeZone: ""}, {ID: "$gt", TimeZone: "UTC"}, {ID: "s", TimeZone: "UTC", Terms: []Term{{Start: "2026-10-01", End: "2026-09-01"}}},
		{ID: "s", TimeZone: "UTC", Holidays: []Holiday{{Start: "2026-02-30"}}}, {ID: "s", TimeZone: "UTC", DigestEveryHours: 1000},
	}
	for i, s := range badSchools {
		if err := ValidateSchool(&s); err == nil {
			t.Errorf("school %d: %+v accepted", i, s)
		}
	}
	for _, e := range []string{"a@b", "a b@c.de", "x@y.z\r\nBcc: evil@x.org", "Name <a@b.cd>", `{"$gt":""}`} {
		if ValidEmail(e) {
			t.Errorf("email %q accepted", e)
		}
	}
	if !ValidEmail("parent.one+x@school.example.org") {
		t.Error("plain email refused")
	}
}
