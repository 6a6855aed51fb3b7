package sio

import "github.com/talim/realtime/services/edge/internal/jsonesc"

// appendJSONString appends s as a JSON string literal with the edge's one escaper
// (internal/jsonesc, shared with the native encoder).
func appendJSONString(dst []byte, s string) []byte { return jsonesc.AppendString(dst, s) }

func isJSONSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// trimRightWS drops trailing JSON whitespace.
func trimRightWS(b []byte) []byte {
	n := len(b)
	for n > 0 && isJSONSpace(b[n-1]) {
		n--
	}
	return b[:n]
}

// scanString returns the index just after the JSON string starting at b[i]
// (which must be '"'), or -1 when the string is not terminated. It only tracks
// escapes to find the closing quote; it does not validate the escapes.
func scanString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index just after the JSON value starting at b[i], or
// -1 when the value is not terminated. It finds the structural extent of the
// value (strings, nesting) and assumes the value is otherwise valid JSON: run
// json.Valid first when the input is untrusted.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return scanString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := scanString(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	case ',', ']', '}', ':':
		return -1
	default: // number, true, false, null
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}
