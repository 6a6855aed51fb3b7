package reach

import (
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Channels a notification can take.
const (
	ChannelInApp = "in-app"
	ChannelPush  = "push"
	ChannelEmail = "email"
)

// Channels lists every channel.
var Channels = []string{ChannelInApp, ChannelPush, ChannelEmail}

// Categories (docs/protocol.md "Preferences"). A notification whose category is not
// listed counts as CategoryGeneral.
const (
	CategoryAnnouncement = "announcement"
	CategoryAssignment   = "assignment"
	CategoryGrade        = "grade"
	CategoryAttendance   = "attendance"
	CategoryEvent        = "event"
	CategoryGeneral      = "general"
	CategoryChatDirect   = "chat.direct"
	CategoryChatMention  = "chat.mention"
	CategorySafeguarding = "safeguarding"
)

// Categories lists every category.
var Categories = []string{
	CategoryAnnouncement, CategoryAssignment, CategoryGrade, CategoryAttendance, CategoryEvent,
	CategoryGeneral, CategoryChatDirect, CategoryChatMention, CategorySafeguarding,
}

// NormalizeCategory maps a notification's category to a preference category.
func NormalizeCategory(c string) string {
	if slices.Contains(Categories, c) {
		return c
	}
	return CategoryGeneral
}

// ValidChannel reports whether c is a channel name.
func ValidChannel(c string) bool { return slices.Contains(Channels, c) }

// ValidCategory reports whether c is a category name.
func ValidCategory(c string) bool { return slices.Contains(Categories, c) }

// Setting turns one category on or off on one channel.
type Setting struct {
	Channel  string `bson:"channel" json:"channel"`
	Category string `bson:"category" json:"category"`
	Enabled  bool   `bson:"enabled" json:"enabled"`
}

// QuietHours is a daily local window; Start after End spans midnight.
type QuietHours struct {
	Start string `bson:"start" json:"start"`
	End   string `bson:"end" json:"end"`
}

// Prefs is what a user chose. Zero values follow the school.
type Prefs struct {
	TimeZone      string      `bson:"timeZone"`
	QuietHours    *QuietHours `bson:"quietHours"`
	QuietHoursOff bool        `bson:"quietHoursOff"`
	Settings      []Setting   `bson:"settings"`
	Digest        *bool       `bson:"digest"`
}

// Contact is what the school set for a user.
type Contact struct {
	SchoolID string `bson:"schoolId"`
	Email    string `bson:"email"`
	Guardian bool   `bson:"guardian"`
}

// Term is a school term (inclusive dates, school time zone).
type Term struct {
	Name  string `bson:"name"`
	Start string `bson:"start"`
	End   string `bson:"end"`
}

// Holiday is a day or an inclusive range of days without school.
type Holiday struct {
	Name  string `bson:"name"`
	Start string `bson:"start"`
	End   string `bson:"end"`
}

// School holds a school's settings.
type School struct {
	ID                       string      `bson:"_id"`
	TimeZone                 string      `bson:"timeZone"`
	DefaultQuietHours        *QuietHours `bson:"defaultQuietHours"`
	Defaults                 []Setting   `bson:"defaults"`
	Terms                    []Term      `bson:"terms"`
	Holidays                 []Holiday   `bson:"holidays"`
	DigestEveryHours         int         `bson:"digestEveryHours"`
	DigestGuardiansByDefault bool        `bson:"digestGuardiansByDefault"`
}

// DefaultSchoolID is the school of users the directory assigns to none.
const DefaultSchoolID = "default"

// Limits of inputs.
const (
	MaxSettings  = 64 // len(Channels) * len(Categories) is 27
	MaxTerms     = 16
	MaxHolidays  = 200
	MaxNameLen   = 100
	MaxEmailLen  = 254
	MaxIDLen     = 128
	MaxDigestHrs = 168
)

// BuiltinDefault is the value for a channel and category nobody set: everything is
// on except email, which only digests use and only when opted in.
func BuiltinDefault(channel, category string) bool {
	return true
}

// Effective resolves channel/category: the user's setting, else the school's, else
// BuiltinDefault. Safeguarding in-app is always on.
func Effective(p *Prefs, s *School, channel, category string) bool {
	if channel == ChannelInApp && category == CategorySafeguarding {
		return true
	}
	if p != nil {
		for _, st := range p.Settings {
			if st.Channel == channel && st.Category == category {
				return st.Enabled
			}
		}
	}
	if s != nil {
		for _, st := range s.Defaults {
			if st.Channel == channel && st.Category == category {
				return st.Enabled
			}
		}
	}
	return BuiltinDefault(channel, category)
}

// EffectiveAll lists every channel and category with its effective value.
func EffectiveAll(p *Prefs, s *School) []Setting {
	out := make([]Setting, 0, len(Channels)*len(Categories))
	for _, ch := range Channels {
		for _, cat := range Categories {
			out = append(out, Setting{Channel: ch, Category: cat, Enabled: Effective(p, s, ch, cat)})
		}
	}
	return out
}

// DigestEnabled reports whether the user gets email digests.
func DigestEnabled(p *Prefs, c *Contact, s *School) bool {
	if p != nil && p.Digest != nil {
		return *p.Digest
	}
	return c != nil && c.Guardian && s != nil && s.DigestGuardiansByDefault
}

var (
	idRe    = regexp.MustCompile(`^[A-Za-z0-9_\-:@.]{1,128}$`)
	clockRe = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	emailRe = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_{|}~\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)+$`)
)

// ValidID reports whether id is a user or school id (the user id alphabet of
// services/notification/internal/notify/validate.go).
func ValidID(id string) bool { return idRe.MatchString(id) }

// ValidEmail reports whether e is a plain addr-spec we are willing to send to: no
// display name, no comments, no line breaks (header injection).
func ValidEmail(e string) bool { return len(e) <= MaxEmailLen && emailRe.MatchString(e) }

// LoadTimeZone validates an IANA zone name. "Local" and "" are refused: a zone must
// be explicit.
func LoadTimeZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || len(name) > 64 {
		return nil, fmt.Errorf("time zone %q: want an IANA name such as Europe/London", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: want an IANA name such as Europe/London", name)
	}
	return loc, nil
}

// parseClock parses "HH:MM" into minutes after midnight.
func parseClock(s string) (int, error) {
	if !clockRe.MatchString(s) {
		return 0, fmt.Errorf("%q: want HH:MM (00:00..23:59)", s)
	}
	return int(s[0]-'0')*600 + int(s[1]-'0')*60 + int(s[3]-'0')*10 + int(s[4]-'0'), nil
}

// ValidateQuietHours checks q (nil is valid: none).
func ValidateQuietHours(q *QuietHours) error {
	if q == nil {
		return nil
	}
	a, err := parseClock(q.Start)
	if err != nil {
		return fmt.Errorf("quiet hours start %w", err)
	}
	b, err := parseClock(q.End)
	if err != nil {
		return fmt.Errorf("quiet hours end %w", err)
	}
	if a == b {
		return fmt.Errorf("quiet hours start and end are equal")
	}
	return nil
}

// ValidateSettings checks channel settings; userSet refuses switching safeguarding
// in-app off.
func ValidateSettings(ss []Setting, userSet bool) error {
	if len(ss) > MaxSettings {
		return fmt.Errorf("at most %d settings", MaxSettings)
	}
	for _, s := range ss {
		if !ValidChannel(s.Channel) {
			return fmt.Errorf("channel %q: want one of %v", s.Channel, Channels)
		}
		if !ValidCategory(s.Category) {
			return fmt.Errorf("category %q: want one of %v", s.Category, Categories)
		}
		if userSet && s.Channel == ChannelInApp && s.Category == CategorySafeguarding && !s.Enabled {
			return fmt.Errorf("safeguarding notifications cannot be switched off in the app")
		}
	}
	return nil
}

// ValidatePrefs checks a user's preferences.
func ValidatePrefs(p *Prefs) error {
	if p.TimeZone != "" {
		if _, err := LoadTimeZone(p.TimeZone); err != nil {
			return err
		}
	}
	if err := ValidateQuietHours(p.QuietHours); err != nil {
		return err
	}
	return ValidateSettings(p.Settings, true)
}

// ParseDate parses "YYYY-MM-DD" as a civil date (midnight UTC).
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return t, nil
}

func validName(n string) bool { return len(n) <= MaxNameLen }

// ValidateSchool checks s.
func ValidateSchool(s *School) error {
	if !ValidID(s.ID) {
		return fmt.Errorf("school id: 1..%d characters of A-Z a-z 0-9 _ - : @ . (dot)", MaxIDLen)
	}
	if _, err := LoadTimeZone(s.TimeZone); err != nil {
		return err
	}
	if err := ValidateQuietHours(s.DefaultQuietHours); err != nil {
		return err
	}
	if err := ValidateSettings(s.Defaults, false); err != nil {
		return err
	}
	if s.DigestEveryHours < 0 || s.DigestEveryHours > MaxDigestHrs {
		return fmt.Errorf("digest every hours: 0 (service default) to %d", MaxDigestHrs)
	}
	if len(s.Terms) > MaxTerms {
		return fmt.Errorf("at most %d terms", MaxTerms)
	}
	for i, t := range s.Terms {
		if err := checkRange(t.Name, t.Start, t.End, false); err != nil {
			return fmt.Errorf("term %d: %w", i+1, err)
		}
	}
	if len(s.Holidays) > MaxHolidays {
		return fmt.Errorf("at most %d holidays", MaxHolidays)
	}
	for i, h := range s.Holidays {
		if err := checkRange(h.Name, h.Start, h.End, true); err != nil {
			return fmt.Errorf("holiday %d: %w", i+1, err)
		}
	}
	return nil
}

func checkRange(name, start, end string, endOptional bool) error {
	if !validName(name) {
		return fmt.Errorf("name: at most %d characters", MaxNameLen)
	}
	a, err := ParseDate(start)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if end == "" && endOptional {
		return nil
	}
	b, err := ParseDate(end)
	if err != nil {
		return fmt.Errorf("end: %w", err)
	}
	if b.Before(a) {
		return fmt.Errorf("end %s is before start %s", end, start)
	}
	if b.Sub(a) > 400*24*time.Hour {
		return fmt.Errorf("longer than 400 days")
	}
	return nil
}
