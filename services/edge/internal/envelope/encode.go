package envelope

import (
	"strconv"
	"unicode/utf8"
)

// AppendEvent appends {"event":<event>,"data":<data>} to dst. data must be a valid
// JSON value; empty data is written as {}.
func AppendEvent(dst []byte, event string, data []byte) []byte {
	dst = append(dst, `{"event":`...)
	dst = AppendString(dst, event)
	dst = append(dst, `,"data":`...)
	dst = appendData(dst, data)
	return append(dst, '}')
}

// AppendAck appends {"event":"ack","id":<id>,"data":<data>} to dst.
func AppendAck(dst []byte, id ID, data []byte) []byte {
	dst = append(dst, `{"event":"ack"`...)
	if id.Present() {
		dst = append(dst, `,"id":`...)
		dst = append(dst, id...)
	}
	dst = append(dst, `,"data":`...)
	dst = appendData(dst, data)
	return append(dst, '}')
}

// AppendError appends {"event":"error","id":<id>,"data":{"code":..,"message":..}} to
// dst, with retryAfterMs when it is positive. The id is omitted when absent.
func AppendError(dst []byte, id ID, code, message string, retryAfterMs int64) []byte {
	dst = append(dst, `{"event":"error"`...)
	if id.Present() {
		dst = append(dst, `,"id":`...)
		dst = append(dst, id...)
	}
	dst = append(dst, `,"data":{"code":`...)
	dst = AppendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, message)
	if retryAfterMs > 0 {
		dst = append(dst, `,"retryAfterMs":`...)
		dst = strconv.AppendInt(dst, retryAfterMs, 10)
	}
	return append(dst, "}}"...)
}

func appendData(dst, data []byte) []byte {
	if len(data) == 0 {
		return append(dst, "{}"...)
	}
	return append(dst, data...)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD; <, > and &
// are left alone (frames are not HTML).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
