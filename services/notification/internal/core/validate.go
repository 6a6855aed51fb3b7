package core

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/talim/realtime/services/notification/internal/store"
)

// Limits of a Send request.
const (
	MaxRecipients    = 10000
	MaxUserIDLen     = 128
	MaxCategoryLen   = 64
	MaxTitleLen      = 200
	MaxBodyLen       = 4000
	MaxDataEntries   = 32
	MaxDataKeyLen    = 64
	MaxDataValueLen  = 1024
	MaxIdempotentKey = 128
	// MaxIDs bounds the ids of one mark-read call.
	MaxIDs = 1000
	// MaxNotificationIDLen bounds a notification id given by a client.
	MaxNotificationIDLen = 128
	DefaultListLimit     = 50
	MaxListLimit         = 200
)

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_\-:@.]{1,128}$`)

// ValidUserID reports whether id is an acceptable user id.
func ValidUserID(id string) bool { return userIDPattern.MatchString(id) }

// ValidNotificationID reports whether id can be a notification id given by a client.
func ValidNotificationID(id string) bool { return id != "" && len(id) <= MaxNotificationIDLen }

// Violation is one invalid field of a request. Field names are those of
// proto/talim/notification/v1 (snake_case, recipients[i], data[key]).
type Violation struct {
	Field, Description string
}

// InvalidError is a request that failed validation; it lists every violation.
type InvalidError struct {
	Violations []Violation
}

func (e *InvalidError) Error() string {
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		parts = append(parts, v.Field+": "+v.Description)
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// violations collects Violations.
type violations []Violation

func (v *violations) Add(field, format string, args ...any) {
	*v = append(*v, Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Err is nil without violations, else an *InvalidError.
func (v violations) Err() error {
	if len(v) == 0 {
		return nil
	}
	return &InvalidError{Violations: v}
}

// Priorities of a notification; an empty SendRequest.Priority is PriorityNormal.
const (
	PriorityLow    = "low"
	PriorityNormal = "normal"
	PriorityHigh   = "high"
)

// CheckMarkRead validates a mark-read request (ids or all); it returns a
// message, empty if valid.
func CheckMarkRead(ids []string, all bool) string {
	switch {
	case all && len(ids) > 0:
		return "give either ids or all, not both"
	case all:
		return ""
	case len(ids) == 0:
		return "ids (a non-empty list) or all:true is required"
	case len(ids) > MaxIDs:
		return fmt.Sprintf("at most %d ids", MaxIDs)
	}
	for _, id := range ids {
		if !ValidNotificationID(id) {
			return "ids must be notification ids"
		}
	}
	return ""
}

// sendInput is a validated Send request.
type sendInput struct {
	Key        string
	Recipients []string // deduplicated, in request order
	Content    store.Content
}

// validateSend checks every limit of req and returns the violations (nil when valid).
func validateSend(req SendRequest, now time.Time) (sendInput, error) {
	var v violations
	in := sendInput{Key: req.IdempotencyKey}
	rs := req.Recipients
	switch {
	case len(rs) == 0:
		v.Add("recipients", "at least one recipient is required")
	case len(rs) > MaxRecipients:
		v.Add("recipients", "at most %d recipients, got %d", MaxRecipients, len(rs))
	default:
		seen := make(map[string]struct{}, len(rs))
		bad := 0
		for i, r := range rs {
			if !ValidUserID(r) {
				if bad++; bad <= 5 { // a few are enough to fix a caller's bug
					v.Add("recipients["+strconv.Itoa(i)+"]", "user ids are 1..%d characters of A-Z a-z 0-9 _ - : @ .", MaxUserIDLen)
				}
				continue
			}
			if _, dup := seen[r]; !dup {
				seen[r] = struct{}{}
				in.Recipients = append(in.Recipients, r)
			}
		}
	}
	checkLen(&v, "category", req.Category, 1, MaxCategoryLen)
	checkLen(&v, "title", req.Title, 1, MaxTitleLen)
	checkLen(&v, "body", req.Body, 0, MaxBodyLen)
	checkLen(&v, "idempotency_key", in.Key, 1, MaxIdempotentKey)
	if d := req.Data; len(d) > MaxDataEntries {
		v.Add("data", "at most %d entries, got %d", MaxDataEntries, len(d))
	} else {
		for k, val := range d {
			checkLen(&v, "data", k, 1, MaxDataKeyLen)
			checkLen(&v, "data["+k+"]", val, 0, MaxDataValueLen)
			in.Content.Data = append(in.Content.Data, store.Pair{K: k, V: val})
		}
		slices.SortFunc(in.Content.Data, func(a, b store.Pair) int { return strings.Compare(a.K, b.K) })
	}
	name := req.Priority
	switch name {
	case "":
		name = PriorityNormal
	case PriorityLow, PriorityNormal, PriorityHigh:
	default:
		v.Add("priority", "unknown priority %s", name)
	}
	if req.ExpiresAt != nil {
		if t := *req.ExpiresAt; !t.After(now) {
			v.Add("expires_at", "must be in the future")
		} else {
			t = t.UTC().Truncate(time.Millisecond)
			in.Content.ExpiresAt = &t
		}
	}
	in.Content.Category, in.Content.Title, in.Content.Body = req.Category, req.Title, req.Body
	in.Content.Priority, in.Content.RequireAck = name, req.RequireAck
	checkLen(&v, "sender_role", req.SenderRole, 0, MaxCategoryLen)
	in.Content.Urgent = req.Urgent
	return in, v.Err()
}

// checkLen checks that s has between lo and hi characters.
func checkLen(v *violations, field, s string, lo, hi int) {
	n := utf8.RuneCountInString(s)
	switch {
	case n < lo && lo == 1:
		v.Add(field, "required")
	case n < lo:
		v.Add(field, "at least %d characters", lo)
	case n > hi:
		v.Add(field, "at most %d characters, got %d", hi, n)
	}
}
