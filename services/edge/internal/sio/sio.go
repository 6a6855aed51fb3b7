package sio

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Socket.IO v5 packet types.
const (
	SIOConnect      = 0
	SIODisconnect   = 1
	SIOEvent        = 2
	SIOAck          = 3
	SIOConnectError = 4
	SIOBinaryEvent  = 5
	SIOBinaryAck    = 6
)

// Limits enforced by ParseSIO.
const (
	// MaxAckIDDigits caps the ack id length: 15 digits always fit in an
	// int64 and are exact in a JavaScript number (< 2^53).
	MaxAckIDDigits = 15
	// MaxNamespaceLen caps the namespace length in bytes, '/' included.
	MaxNamespaceLen = 128
	// MaxAttachments caps the attachment count parsed from binary packets
	// (only reported, binary packets are refused anyway).
	MaxAttachments = 1000
)

// DefaultNamespace is the main namespace, the only one the edge serves.
const DefaultNamespace = "/"

// SIOPacket is a decoded Socket.IO packet (the data of an Engine.IO message).
type SIOPacket struct {
	// Type is SIOConnect..SIOBinaryAck.
	Type int
	// Namespace is "/" when the packet has none.
	Namespace string
	// AckID is the ack id, or -1 when absent.
	AckID int64
	// Attachments is the binary attachment count of BINARY_EVENT/BINARY_ACK
	// packets (0 otherwise).
	Attachments int
	// Data is the JSON payload, nil when absent. It aliases the input.
	Data json.RawMessage
}

// ParseSIO decodes a Socket.IO packet (the data of an Engine.IO message
// packet, i.e. the frame without its leading '4'). Validation is strict:
//
//   - the type must be 0..6; BINARY_EVENT/BINARY_ACK are refused with
//     ErrBinaryUnsupported (Type, Namespace and Attachments are still filled
//     in when they parse);
//   - a namespace starts with '/' and ends at ',' (or the end of the packet);
//   - an ack id is 1..MaxAckIDDigits digits without leading zeros, allowed on
//     EVENT, required on ACK, refused elsewhere;
//   - the payload must be valid JSON of the shape the type requires:
//     CONNECT absent or object, DISCONNECT absent, EVENT and ACK array,
//     CONNECT_ERROR object or string.
//
// Data aliases data. Event names are checked by ParseEvent, not here.
func ParseSIO(data []byte) (SIOPacket, error) {
	p := SIOPacket{Namespace: DefaultNamespace, AckID: -1}
	if len(data) == 0 {
		return p, fmt.Errorf("%w: socket.io packet has no type", ErrEmpty)
	}
	c := data[0]
	if c < '0' || c > '6' {
		return p, fmt.Errorf("%w: socket.io type %q", ErrUnknownType, c)
	}
	p.Type = int(c - '0')
	i := 1

	binary := p.Type == SIOBinaryEvent || p.Type == SIOBinaryAck
	if binary {
		start := i
		n := 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' && n <= MaxAttachments {
			n = n*10 + int(data[i]-'0')
			i++
		}
		if i == start || i >= len(data) || data[i] != '-' {
			return p, fmt.Errorf("%w: malformed attachment count", ErrBinaryUnsupported)
		}
		p.Attachments = n
		i++
	}

	if i < len(data) && data[i] == '/' {
		start := i
		for i < len(data) && data[i] != ',' {
			i++
		}
		nsp := data[start:i]
		if i < len(data) {
			i++ // the ','
		}
		if err := checkNamespace(nsp); err != nil {
			return p, err
		}
		p.Namespace = string(nsp)
		if len(nsp) == 1 {
			p.Namespace = DefaultNamespace // no allocation for "/,"
		}
	}

	if i < len(data) && data[i] >= '0' && data[i] <= '9' {
		start := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			i++
		}
		digits := data[start:i]
		if len(digits) > MaxAckIDDigits {
			return p, fmt.Errorf("%w: more than %d digits", ErrBadAckID, MaxAckIDDigits)
		}
		if len(digits) > 1 && digits[0] == '0' {
			return p, fmt.Errorf("%w: leading zero", ErrBadAckID)
		}
		var id int64
		for _, d := range digits {
			id = id*10 + int64(d-'0')
		}
		p.AckID = id
	}

	if binary {
		return p, fmt.Errorf("%w: socket.io packet type %d", ErrBinaryUnsupported, p.Type)
	}

	switch p.Type {
	case SIOConnect, SIODisconnect, SIOConnectError:
		if p.AckID >= 0 {
			return p, fmt.Errorf("%w: not allowed on packet type %d", ErrBadAckID, p.Type)
		}
	case SIOAck:
		if p.AckID < 0 {
			return p, fmt.Errorf("%w: ACK packet without an ack id", ErrBadAckID)
		}
	}

	payload := data[i:]
	if len(payload) == 0 {
		switch p.Type {
		case SIOConnect, SIODisconnect:
			return p, nil
		}
		return p, fmt.Errorf("%w: packet type %d needs a payload", ErrBadPayload, p.Type)
	}
	if p.Type == SIODisconnect {
		return p, fmt.Errorf("%w: DISCONNECT carries no payload", ErrBadPayload)
	}
	if !json.Valid(payload) {
		return p, fmt.Errorf("%w: payload is not valid JSON", ErrBadPayload)
	}
	first := payload[skipWS(payload, 0)]
	switch p.Type {
	case SIOConnect:
		if first != '{' {
			return p, fmt.Errorf("%w: CONNECT payload must be an object", ErrBadPayload)
		}
	case SIOEvent, SIOAck:
		if first != '[' {
			return p, fmt.Errorf("%w: packet type %d payload must be an array", ErrBadPayload, p.Type)
		}
	case SIOConnectError:
		if first != '{' && first != '"' {
			return p, fmt.Errorf("%w: CONNECT_ERROR payload must be an object or a string", ErrBadPayload)
		}
	}
	p.Data = payload
	return p, nil
}

func checkNamespace(nsp []byte) error {
	if len(nsp) > MaxNamespaceLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadNamespace, MaxNamespaceLen)
	}
	for _, c := range nsp {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: control character", ErrBadNamespace)
		}
	}
	if !utf8.Valid(nsp) {
		return fmt.Errorf("%w: invalid UTF-8", ErrBadNamespace)
	}
	return nil
}

// AppendSIO appends the complete Engine.IO message frame ("4" followed by
// the Socket.IO encoding) of p. Namespace "" and "/" are omitted, AckID < 0
// is omitted, Attachments is written for binary types only; Data is copied
// verbatim (it must be valid JSON or empty).
func AppendSIO(dst []byte, p SIOPacket) []byte {
	dst = append(dst, '4', byte('0'+p.Type))
	if p.Type == SIOBinaryEvent || p.Type == SIOBinaryAck {
		dst = strconv.AppendInt(dst, int64(p.Attachments), 10)
		dst = append(dst, '-')
	}
	if p.Namespace != "" && p.Namespace != DefaultNamespace {
		dst = append(dst, p.Namespace...)
		dst = append(dst, ',')
	}
	if p.AckID >= 0 {
		dst = strconv.AppendInt(dst, p.AckID, 10)
	}
	return append(dst, p.Data...)
}

// AppendConnect appends the CONNECT reply for the main namespace:
// 40{"sid":"<sid>"} where sid is the Socket.IO socket id.
func AppendConnect(dst []byte, sid string) []byte {
	dst = append(dst, `40{"sid":`...)
	dst = appendJSONString(dst, sid)
	return append(dst, '}')
}

// AppendConnectPID appends the CONNECT reply of a session with connection
// state recovery: 40{"sid":"<sid>","pid":"<pid>"}. socket.io-client sends pid
// back in its next CONNECT and sets socket.recovered when the reply carries the
// same pid again.
func AppendConnectPID(dst []byte, sid, pid string) []byte {
	dst = append(dst, `40{"sid":`...)
	dst = appendJSONString(dst, sid)
	dst = append(dst, `,"pid":`...)
	dst = appendJSONString(dst, pid)
	return append(dst, '}')
}

// AppendConnectError appends a CONNECT_ERROR for the main namespace:
// 44{"message":"<message>"} with message JSON-escaped. socket.io-client
// surfaces it as the Error of the "connect_error" event.
func AppendConnectError(dst []byte, message string) []byte {
	return AppendConnectErrorNsp(dst, DefaultNamespace, message)
}

// AppendConnectErrorNsp is AppendConnectError for namespace nsp
// (44/admin,{"message":"..."}); the client only accepts it on the namespace
// it tried to connect to.
func AppendConnectErrorNsp(dst []byte, nsp, message string) []byte {
	dst = append(dst, '4', '4')
	if nsp != "" && nsp != DefaultNamespace {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	dst = append(dst, `{"message":`...)
	dst = appendJSONString(dst, message)
	return append(dst, '}')
}

// AppendEvent appends an EVENT for the main namespace: 42["<name>",<data>].
// name is JSON-escaped; data is copied verbatim and must be valid JSON (the
// event is sent without argument, 42["<name>"], when data is empty).
func AppendEvent(dst []byte, name string, data json.RawMessage) []byte {
	dst = append(dst, '4', '2', '[')
	dst = appendJSONString(dst, name)
	if len(data) > 0 {
		dst = append(dst, ',')
		dst = append(dst, data...)
	}
	return append(dst, ']')
}

// AppendEventOffset appends an EVENT carrying a recovery offset as its last
// argument: 42["<name>",<data>,"<offset>"]. socket.io-client keeps the last
// string argument of every event as the offset it sends back on reconnection.
func AppendEventOffset(dst []byte, name string, data json.RawMessage, offset string) []byte {
	dst = append(dst, '4', '2', '[')
	dst = appendJSONString(dst, name)
	dst = append(dst, ',')
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	dst = append(dst, data...)
	dst = append(dst, ',')
	dst = appendJSONString(dst, offset)
	return append(dst, ']')
}

// AppendAck appends the ACK answering the client's EVENT with id ackID:
// 43<ackID>[<data>]; the client's ack callback receives data as its only
// argument. data is copied verbatim and must be valid JSON (43<ackID>[] when
// empty).
func AppendAck(dst []byte, ackID int64, data json.RawMessage) []byte {
	dst = append(dst, '4', '3')
	dst = strconv.AppendInt(dst, ackID, 10)
	dst = append(dst, '[')
	dst = append(dst, data...)
	return append(dst, ']')
}

// AppendDisconnect appends a DISCONNECT for the main namespace: "41". The
// client then reports the reason "io server disconnect" and does not
// reconnect on its own.
func AppendDisconnect(dst []byte) []byte { return append(dst, '4', '1') }
