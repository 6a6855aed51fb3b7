package notify

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/talim/realtime/pkg/grpcx"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
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

// sendInput is a validated Send request.
type sendInput struct {
	Key        string
	Recipients []string // deduplicated, in request order
	Content    store.Content
}

// validateSend checks every limit of req and returns the violations (nil when valid).
func validateSend(req *notificationv1.SendRequest, now time.Time) (sendInput, error) {
	var v grpcx.FieldViolations
	in := sendInput{Key: req.GetIdempotencyKey()}
	rs := req.GetRecipients()
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
	checkLen(&v, "category", req.GetCategory(), 1, MaxCategoryLen)
	checkLen(&v, "title", req.GetTitle(), 1, MaxTitleLen)
	checkLen(&v, "body", req.GetBody(), 0, MaxBodyLen)
	checkLen(&v, "idempotency_key", in.Key, 1, MaxIdempotentKey)
	if d := req.GetData(); len(d) > MaxDataEntries {
		v.Add("data", "at most %d entries, got %d", MaxDataEntries, len(d))
	} else {
		for k, val := range d {
			checkLen(&v, "data", k, 1, MaxDataKeyLen)
			checkLen(&v, "data["+k+"]", val, 0, MaxDataValueLen)
			in.Content.Data = append(in.Content.Data, store.Pair{K: k, V: val})
		}
		slices.SortFunc(in.Content.Data, func(a, b store.Pair) int { return strings.Compare(a.K, b.K) })
	}
	name, ok := priorityNames[req.GetPriority()]
	if !ok {
		v.Add("priority", "unknown priority %d", req.GetPriority())
	}
	if ts := req.GetExpiresAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			v.Add("expires_at", "invalid timestamp: %v", err)
		} else if t := ts.AsTime(); !t.After(now) {
			v.Add("expires_at", "must be in the future")
		} else {
			t = t.UTC().Truncate(time.Millisecond)
			in.Content.ExpiresAt = &t
		}
	}
	in.Content.Category, in.Content.Title, in.Content.Body = req.GetCategory(), req.GetTitle(), req.GetBody()
	in.Content.Priority, in.Content.RequireAck = name, req.GetRequireAck()
	return in, v.Err()
}

// checkLen checks that s has between lo and hi characters.
func checkLen(v *grpcx.FieldViolations, field, s string, lo, hi int) {
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
