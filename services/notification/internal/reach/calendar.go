package reach

import (
	"errors"
	"fmt"
	"time"
)

// maxQuietSteps bounds the walk through quiet periods in NextAllowed: each step
// skips one quiet window or one school-free day, and the longest calendar range is
// 400 days (ValidateSchool).
const maxQuietSteps = 2 * 450

// ErrCalendarLoop means no allowed time was found within maxQuietSteps steps.
var ErrCalendarLoop = errors.New("no time outside quiet hours and holidays found")

// Calendar is a resolved view of a user's quiet hours and their school's calendar.
type Calendar struct {
	// UserLoc is the zone quiet hours are read in.
	UserLoc *time.Location
	// Quiet is the daily window in minutes after local midnight; nil: none.
	Quiet *[2]int
	// SchoolLoc is the zone of the calendar dates.
	SchoolLoc *time.Location
	// free reports whether a civil date (in SchoolLoc) has no school.
	holidays [][2]time.Time // inclusive civil date ranges (midnight UTC)
	terms    [][2]time.Time
	termMin  time.Time
	termMax  time.Time
}

// NewCalendar resolves the user's zone and quiet hours (falling back to the
// school's) and the school's terms and holidays. Inputs are assumed validated; a
// zone that fails to load falls back to UTC.
func NewCalendar(p *Prefs, s *School) (*Calendar, error) {
	c := &Calendar{UserLoc: time.UTC, SchoolLoc: time.UTC}
	if s != nil && s.TimeZone != "" {
		loc, err := LoadTimeZone(s.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("school %s: %w", s.ID, err)
		}
		c.SchoolLoc, c.UserLoc = loc, loc
	}
	if p != nil && p.TimeZone != "" {
		loc, err := LoadTimeZone(p.TimeZone)
		if err != nil {
			return nil, err
		}
		c.UserLoc = loc
	}
	var q *QuietHours
	switch {
	case p != nil && p.QuietHoursOff:
	case p != nil && p.QuietHours != nil:
		q = p.QuietHours
	case s != nil:
		q = s.DefaultQuietHours
	}
	if q != nil {
		a, err := parseClock(q.Start)
		if err != nil {
			return nil, err
		}
		b, err := parseClock(q.End)
		if err != nil {
			return nil, err
		}
		c.Quiet = &[2]int{a, b}
	}
	if s == nil {
		return c, nil
	}
	for _, h := range s.Holidays {
		a, b, err := dateRange(h.Start, h.End)
		if err != nil {
			return nil, err
		}
		c.holidays = append(c.holidays, [2]time.Time{a, b})
	}
	for _, t := range s.Terms {
		a, b, err := dateRange(t.Start, t.End)
		if err != nil {
			return nil, err
		}
		c.terms = append(c.terms, [2]time.Time{a, b})
		if c.termMin.IsZero() || a.Before(c.termMin) {
			c.termMin = a
		}
		if b.After(c.termMax) {
			c.termMax = b
		}
	}
	return c, nil
}

func dateRange(start, end string) (time.Time, time.Time, error) {
	a, err := ParseDate(start)
	if err != nil {
		return a, a, err
	}
	if end == "" {
		return a, a, nil
	}
	b, err := ParseDate(end)
	return a, b, err
}

// civil is t's calendar date in loc as midnight UTC (comparable with ParseDate).
func civil(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func within(d time.Time, r [2]time.Time) bool { return !d.Before(r[0]) && !d.After(r[1]) }

// SchoolFree reports whether the school date of t is a holiday or, between the
// first term's start and the last term's end, a day outside every term. Dates
// before the first and after the last term are school days: a calendar that has
// not been filled in holds nothing back.
func (c *Calendar) SchoolFree(t time.Time) bool {
	d := civil(t, c.SchoolLoc)
	for _, h := range c.holidays {
		if within(d, h) {
			return true
		}
	}
	if len(c.terms) == 0 || d.Before(c.termMin) || d.After(c.termMax) {
		return false
	}
	for _, r := range c.terms {
		if within(d, r) {
			return false
		}
	}
	return true
}

// quietEnd returns the end of the quiet window containing t, or the zero time when
// t is not in quiet hours.
func (c *Calendar) quietEnd(t time.Time) time.Time {
	if c.Quiet == nil {
		return time.Time{}
	}
	lt := t.In(c.UserLoc)
	mins := lt.Hour()*60 + lt.Minute()
	start, end := c.Quiet[0], c.Quiet[1]
	var quiet, endsTomorrow bool
	if start < end {
		quiet = mins >= start && mins < end
	} else {
		quiet = mins >= start || mins < end
		endsTomorrow = mins >= start
	}
	if !quiet {
		return time.Time{}
	}
	y, m, d := lt.Date()
	if endsTomorrow {
		d++
	}
	// time.Date normalises a wall time that falls in a daylight-saving gap forward.
	e := time.Date(y, m, d, end/60, end%60, 0, 0, c.UserLoc)
	if !e.After(t) { // a repeated hour at the end of daylight saving time
		e = t.Add(time.Minute).Truncate(time.Minute)
	}
	return e
}

// nextSchoolDay is the start of the school date after t's.
func (c *Calendar) nextSchoolDay(t time.Time) time.Time {
	y, m, d := t.In(c.SchoolLoc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, c.SchoolLoc)
}

// NextAllowed returns the first instant at or after now outside quiet hours and
// school-free days; it returns now itself when now is allowed.
func (c *Calendar) NextAllowed(now time.Time) (time.Time, error) {
	t := now
	for range maxQuietSteps {
		switch {
		case c.SchoolFree(t):
			t = c.nextSchoolDay(t)
		default:
			e := c.quietEnd(t)
			if e.IsZero() {
				return t, nil
			}
			t = e
		}
	}
	return time.Time{}, fmt.Errorf("from %s: %w", now.UTC().Format(time.RFC3339), ErrCalendarLoop)
}
