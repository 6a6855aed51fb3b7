package core

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/talim/realtime/pkg/command"
)

// Input limits (docs/protocol.md, "Chat" and "Limits").
const (
	MaxContentRunes   = 4000
	MaxClientMsgID    = 64
	MaxIDLen          = 128
	DefaultPageLimit  = 50
	MaxPageLimit      = 200
	MaxRoomNameRunes  = 200
	MaxDisplayNameLen = 200
)

var (
	idRe          = regexp.MustCompile(`^[A-Za-z0-9_\-:@.]{1,128}$`)
	clientMsgIDRe = regexp.MustCompile(`^[A-Za-z0-9_\-:@.]{1,64}$`)
	msgTypeRe     = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
)

// ValidID reports whether s is a valid room/user/message id: 1..128 characters of
// [A-Za-z0-9_-:@.]. Such ids never start with '$', never contain '|' (the
// membership _id separator) or NUL, and are safe as MongoDB values.
func ValidID(s string) bool { return idRe.MatchString(s) }

// ValidClientMsgID reports whether s is a valid clientMsgId / idempotency key.
func ValidClientMsgID(s string) bool { return clientMsgIDRe.MatchString(s) }

// CheckID returns a bad_request unless v is a valid id; field names the field.
func CheckID(field, v string) error {
	switch {
	case v == "":
		return command.BadRequest("%s is required", field)
	case !ValidID(v):
		return command.BadRequest("%s must be 1..%d characters of [A-Za-z0-9_-:@.]", field, MaxIDLen)
	}
	return nil
}

// NormalizeContent trims content and checks its length (1..4000 characters).
func NormalizeContent(content string) (string, string, bool) {
	c := strings.TrimSpace(content)
	n := utf8.RuneCountInString(c)
	if n == 0 {
		return "", "must not be empty or only whitespace", false
	}
	if n > MaxContentRunes {
		return "", "must be at most 4000 characters", false
	}
	return c, "", true
}

func checkContent(content string) (string, error) {
	c, why, ok := NormalizeContent(content)
	if !ok {
		return "", command.BadRequest("content %s", why)
	}
	return c, nil
}

// pageLimit applies the default and the maximum; limits below 1 are invalid.
func pageLimit(limit *int) (int, error) {
	if limit == nil {
		return DefaultPageLimit, nil
	}
	if *limit < 1 {
		return 0, command.BadRequest("limit must be at least 1")
	}
	return min(*limit, MaxPageLimit), nil
}
