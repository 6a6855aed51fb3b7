package sio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// MaxEventNameLen is the longest event name accepted, in characters.
const MaxEventNameLen = 64

// reservedEvents are the names socket.io-parser refuses in EVENT packets.
var reservedEvents = [...]string{
	"connect", "connect_error", "disconnect", "disconnecting",
	"newListener", "removeListener",
}

// ParseEvent extracts the event name and its first argument from the
// payload of an EVENT packet (SIOPacket.Data). The payload must be a JSON
// array whose first element is a string: the event name, 1..MaxEventNameLen
// characters, no control characters, not one of the names Socket.IO
// reserves ("connect", "disconnect", ...). The first argument is the event
// data; it is returned as is (aliasing data) and may be any JSON value,
// except that a missing or null argument yields {}. Further arguments are
// ignored.
//
// The payload is validated once with json.Valid and then scanned; neither
// the data argument nor the ignored ones are decoded.
func ParseEvent(data json.RawMessage) (name string, arg json.RawMessage, err error) {
	if !json.Valid(data) {
		return "", nil, fmt.Errorf("%w: event payload is not valid JSON", ErrBadPayload)
	}
	return parseEventValid(data)
}

// parseEventValid is ParseEvent for input already known to be valid JSON.
func parseEventValid(data []byte) (string, json.RawMessage, error) {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '[' {
		return "", nil, fmt.Errorf("%w: event payload must be an array", ErrBadPayload)
	}
	i = skipWS(data, i+1)
	if i >= len(data) || data[i] == ']' {
		return "", nil, fmt.Errorf("%w: event name missing", ErrBadPayload)
	}
	if data[i] != '"' {
		return "", nil, fmt.Errorf("%w: event name must be a string", ErrBadPayload)
	}
	end := scanString(data, i)
	if end < 0 {
		return "", nil, fmt.Errorf("%w: unterminated event name", ErrBadPayload)
	}
	raw := data[i:end]
	// A name of MaxEventNameLen characters takes at most 6 bytes per
	// character when escaped (\uXXXX): refuse longer ones before decoding.
	if len(raw)-2 > 6*MaxEventNameLen {
		return "", nil, fmt.Errorf("%w: event name longer than %d characters", ErrBadPayload, MaxEventNameLen)
	}
	name, err := decodeName(raw)
	if err != nil {
		return "", nil, err
	}

	i = skipWS(data, end)
	if i >= len(data) {
		return "", nil, fmt.Errorf("%w: unterminated event array", ErrBadPayload)
	}
	if data[i] == ']' {
		return name, json.RawMessage(`{}`), nil
	}
	if data[i] != ',' {
		return "", nil, fmt.Errorf("%w: malformed event array", ErrBadPayload)
	}
	i = skipWS(data, i+1)
	vend := skipValue(data, i)
	if vend < 0 {
		return "", nil, fmt.Errorf("%w: malformed event argument", ErrBadPayload)
	}
	arg := data[i:vend]
	if string(arg) == "null" {
		return name, json.RawMessage(`{}`), nil
	}
	return name, json.RawMessage(arg), nil
}

// decodeName decodes and checks the quoted event name raw.
func decodeName(raw []byte) (string, error) {
	var name string
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if !utf8.Valid(inner) {
			return "", fmt.Errorf("%w: event name is not valid UTF-8", ErrBadPayload)
		}
		name = string(inner)
	} else if err := json.Unmarshal(raw, &name); err != nil {
		return "", fmt.Errorf("%w: event name: %v", ErrBadPayload, err)
	}
	if name == "" {
		return "", fmt.Errorf("%w: empty event name", ErrBadPayload)
	}
	if utf8.RuneCountInString(name) > MaxEventNameLen {
		return "", fmt.Errorf("%w: event name longer than %d characters", ErrBadPayload, MaxEventNameLen)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return "", fmt.Errorf("%w: event name contains a control or invalid character", ErrBadPayload)
		}
	}
	for _, r := range reservedEvents {
		if name == r {
			return "", fmt.Errorf("%w: event name %q is reserved", ErrBadPayload, name)
		}
	}
	return name, nil
}

const (
	nativePrefix  = `{"event":"`
	nativeDataKey = `,"data":`
)

// AppendEventFromNative converts a server → client frame of the native
// protocol (docs/protocol.md "Frames") into a Socket.IO EVENT frame without decoding
// the data:
//
//	{"event":"chat-message","data":{...}}  →  42["chat-message",{...}]
//
// Contract (fast path): the frame is produced by the edge's own encoder,
// exactly `{"event":<JSON string>,"data":<valid JSON>}` (no whitespace
// between tokens, these two keys in this order, optionally trailing
// whitespace such as json.Encoder's newline), or `{"event":<string>}`.
// The fast path checks the prefix, the closing '}' and the structural
// extent of the event string and the data value, and copies both verbatim;
// it does not re-validate the data JSON.
//
// Any other shape (other key order, extra keys, whitespace) falls back to a
// full json decode. Frames carrying an "id" are command replies (ack/error):
// they are refused with ErrBadPayload, the adapter must answer those with
// AppendAck.
func AppendEventFromNative(dst, nativeFrame []byte) ([]byte, error) {
	b := trimRightWS(nativeFrame)
	if len(b) > len(nativePrefix) && b[len(b)-1] == '}' && string(b[:len(nativePrefix)]) == nativePrefix {
		nameEnd := scanString(b, len(nativePrefix)-1)
		if nameEnd > len(nativePrefix)+1 { // a non-empty name
			name := b[len(nativePrefix)-1 : nameEnd]
			if nameEnd == len(b)-1 {
				dst = append(dst, '4', '2', '[')
				dst = append(dst, name...)
				return append(dst, ']'), nil
			}
			rest := b[nameEnd:]
			if len(rest) > len(nativeDataKey)+1 && string(rest[:len(nativeDataKey)]) == nativeDataKey {
				ds := nameEnd + len(nativeDataKey)
				if de := skipValue(b, ds); de == len(b)-1 {
					dst = append(dst, '4', '2', '[')
					dst = append(dst, name...)
					dst = append(dst, ',')
					dst = append(dst, b[ds:de]...)
					return append(dst, ']'), nil
				}
			}
		}
	}
	return appendEventFromNativeSlow(dst, nativeFrame)
}

func appendEventFromNativeSlow(dst, nativeFrame []byte) ([]byte, error) {
	var f struct {
		Event *string         `json:"event"`
		Data  json.RawMessage `json:"data"`
		ID    json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(nativeFrame, &f); err != nil {
		return dst, fmt.Errorf("%w: native frame: %v", ErrBadPayload, err)
	}
	if f.Event == nil || *f.Event == "" {
		return dst, fmt.Errorf("%w: native frame has no event name", ErrBadPayload)
	}
	if f.ID != nil {
		return dst, fmt.Errorf("%w: native frame carries an id (a command reply): use AppendAck", ErrBadPayload)
	}
	return AppendEvent(dst, *f.Event, f.Data), nil
}
