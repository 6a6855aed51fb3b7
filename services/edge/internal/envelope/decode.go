package envelope

import (
	"bytes"
	"errors"
	"unicode/utf8"
)

// Limits of the envelope fields.
const (
	MaxEventLen = 64
	MaxIDLen    = 64 // string ids, in characters of the raw JSON token (without quotes)
	maxIntIDLen = 19 // digits of an integer id (fits in int64)
	maxDepth    = 64 // nesting limit inside data
)

// ID is the raw JSON token of a command id exactly as the client sent it ("17" or
// `"abc"` including the quotes), so that it can be echoed back byte for byte. An empty
// ID means the command had none.
type ID []byte

// Present reports whether the command carried an id.
func (id ID) Present() bool { return len(id) > 0 }

// Envelope is one decoded client frame. Its slices alias the decoded message.
type Envelope struct {
	Event []byte // validated event name (look it up with m[string(Event)]: no allocation)
	Data  []byte // raw JSON object; "{}" when absent
	ID    ID     // raw id token; nil when absent
}

// Error is a decoding failure. ID holds the id when it could be parsed before the
// failure, so that the error reply can still echo it.
type Error struct {
	Reason string
	ID     ID
}

func (e *Error) Error() string { return "bad envelope: " + e.Reason }

// ErrSyntax is the reason used for malformed JSON.
var ErrSyntax = errors.New("malformed JSON")

var emptyObject = []byte("{}")

// Decode parses msg strictly. On failure the returned *Error carries the id when it
// was already parsed (the id may appear before or after the faulty field; Decode
// makes a best-effort pass to find it).
func Decode(msg []byte) (Envelope, *Error) {
	var env Envelope
	d := decoder{b: msg}
	if reason := d.envelope(&env); reason != "" {
		id := env.ID
		if id == nil {
			id = findID(msg)
		}
		return Envelope{}, &Error{Reason: reason, ID: id}
	}
	if env.Data == nil {
		env.Data = emptyObject
	}
	return env, nil
}

type decoder struct {
	b []byte
	i int
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) envelope(env *Envelope) string {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return "envelope must be a JSON object"
	}
	d.i++
	var seenEvent, seenData, seenID bool
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
	} else {
		for {
			d.ws()
			kStart := d.i
			if !d.str() {
				return "malformed JSON"
			}
			key := d.b[kStart+1 : d.i-1]
			if bytes.IndexByte(key, '\\') >= 0 {
				// An escaped key could spell "event" in a way this decoder would not
				// recognise but a service's JSON decoder would.
				return "escaped keys are not allowed in the envelope"
			}
			d.ws()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return "malformed JSON"
			}
			d.i++
			d.ws()
			vStart := d.i
			switch string(key) {
			case "event":
				if seenEvent {
					return "duplicate field event"
				}
				seenEvent = true
				if d.i >= len(d.b) || d.b[d.i] != '"' {
					if !d.value(0) {
						return "malformed JSON"
					}
					return "event must be a string"
				}
				if !d.str() {
					return "malformed JSON"
				}
				name := d.b[vStart+1 : d.i-1]
				if !validEvent(name) {
					return "event must be 1..64 characters of a-z, 0-9 and -"
				}
				env.Event = name
			case "data":
				if seenData {
					return "duplicate field data"
				}
				seenData = true
				if d.i >= len(d.b) || d.b[d.i] != '{' {
					if !d.value(0) {
						return "malformed JSON"
					}
					if string(d.b[vStart:d.i]) == "null" {
						env.Data = nil // null is treated as absent
						break
					}
					return "data must be an object"
				}
				if !d.value(0) {
					return "malformed JSON"
				}
				env.Data = d.b[vStart:d.i]
			case "id":
				if seenID {
					return "duplicate field id"
				}
				seenID = true
				if !d.value(0) {
					return "malformed JSON"
				}
				raw := d.b[vStart:d.i]
				if !validID(raw) {
					return "id must be an integer or a string of at most 64 characters"
				}
				env.ID = raw
			default:
				if !d.value(0) {
					return "malformed JSON"
				}
			}
			d.ws()
			if d.i >= len(d.b) {
				return "malformed JSON"
			}
			if d.b[d.i] == ',' {
				d.i++
				continue
			}
			if d.b[d.i] == '}' {
				d.i++
				break
			}
			return "malformed JSON"
		}
	}
	d.ws()
	if d.i != len(d.b) {
		return "trailing data after the envelope"
	}
	if !seenEvent {
		return "event is required"
	}
	return ""
}

// value skips one JSON value, validating it.
func (d *decoder) value(depth int) bool {
	if depth > maxDepth || d.i >= len(d.b) {
		return false
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return true
		}
		for {
			d.ws()
			if !d.str() {
				return false
			}
			d.ws()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return false
			}
			d.i++
			d.ws()
			if !d.value(depth + 1) {
				return false
			}
			d.ws()
			if d.i >= len(d.b) {
				return false
			}
			switch d.b[d.i] {
			case ',':
				d.i++
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case c == '[':
		d.i++
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return true
		}
		for {
			d.ws()
			if !d.value(depth + 1) {
				return false
			}
			d.ws()
			if d.i >= len(d.b) {
				return false
			}
			switch d.b[d.i] {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case c == '"':
		return d.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return d.lit("true")
	case c == 'f':
		return d.lit("false")
	case c == 'n':
		return d.lit("null")
	}
	return false
}

func (d *decoder) lit(s string) bool {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

// str skips a JSON string starting at d.i (which must be a quote), validating escapes,
// control characters and UTF-8.
func (d *decoder) str() bool {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return false
	}
	d.i++
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return true
		case c == '\\':
			d.i++
			if d.i >= len(d.b) {
				return false
			}
			switch d.b[d.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i++
			case 'u':
				if len(d.b)-d.i < 5 {
					return false
				}
				for _, h := range d.b[d.i+1 : d.i+5] {
					if !isHex(h) {
						return false
					}
				}
				d.i += 5
			default:
				return false
			}
		case c < 0x20:
			return false
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, n := utf8.DecodeRune(d.b[d.i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			d.i += n
		}
	}
	return false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number skips a JSON number per RFC 8259.
func (d *decoder) number() bool {
	if d.b[d.i] == '-' {
		d.i++
	}
	if d.i >= len(d.b) {
		return false
	}
	switch {
	case d.b[d.i] == '0':
		d.i++
	case d.b[d.i] >= '1' && d.b[d.i] <= '9':
		for d.i < len(d.b) && isDigit(d.b[d.i]) {
			d.i++
		}
	default:
		return false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		start := d.i
		for d.i < len(d.b) && isDigit(d.b[d.i]) {
			d.i++
		}
		if d.i == start {
			return false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		start := d.i
		for d.i < len(d.b) && isDigit(d.b[d.i]) {
			d.i++
		}
		if d.i == start {
			return false
		}
	}
	return true
}

func validEvent(name []byte) bool {
	if len(name) == 0 || len(name) > MaxEventLen {
		return false
	}
	for _, c := range name {
		if !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
			return false
		}
	}
	return true
}

// validID accepts an already-validated JSON token that is an integer (no fraction or
// exponent, at most 19 digits) or a string of at most MaxIDLen raw bytes.
func validID(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	if raw[0] == '"' {
		return len(raw)-2 <= MaxIDLen
	}
	digits := raw
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > maxIntIDLen {
		return false
	}
	for _, c := range digits {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// findID scans a (possibly invalid) message for a top-level "id" whose value parses,
// so that an error about another field can still echo it.
func findID(msg []byte) ID {
	d := decoder{b: msg}
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil
	}
	d.i++
	for {
		d.ws()
		kStart := d.i
		if !d.str() {
			return nil
		}
		key := d.b[kStart+1 : d.i-1]
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil
		}
		d.i++
		d.ws()
		vStart := d.i
		if !d.value(0) {
			return nil
		}
		if string(key) == "id" {
			if raw := d.b[vStart:d.i]; validID(raw) {
				return raw
			}
			return nil
		}
		d.ws()
		if d.i >= len(d.b) || d.b[d.i] != ',' {
			return nil
		}
		d.i++
	}
}
