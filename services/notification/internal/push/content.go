package push

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"unicode/utf8"
)

// topicHeader maps a collapse key to a Topic header value: at most 32 characters
// of the base64url alphabet (RFC 8030 section 5.4).
func topicHeader(topic string) string {
	if topic == "" {
		return ""
	}
	h := sha256.Sum256([]byte(topic))
	return base64.RawURLEncoding.EncodeToString(h[:24])
}

func urlQuery(s string) string { return url.QueryEscape(s) }

// truncate shortens s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
