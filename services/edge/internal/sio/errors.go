package sio

import "errors"

// Sentinel errors. Parsers wrap them with details (use errors.Is).
var (
	// ErrEmpty reports an empty Engine.IO frame or an empty Socket.IO packet.
	ErrEmpty = errors.New("sio: empty packet")

	// ErrUnknownType reports a packet type digit outside the range defined by
	// the protocol (Engine.IO: 0-6, Socket.IO: 0-6).
	ErrUnknownType = errors.New("sio: unknown packet type")

	// ErrBadNamespace reports a namespace that is empty after the '/', too long
	// (more than MaxNamespaceLen bytes) or that contains control characters or
	// invalid UTF-8.
	ErrBadNamespace = errors.New("sio: invalid namespace")

	// ErrBadAckID reports an ack id that is too long (more than MaxAckIDDigits
	// digits), has leading zeros, is missing where required (ACK packets) or
	// present where the protocol does not allow one (CONNECT, DISCONNECT,
	// CONNECT_ERROR).
	ErrBadAckID = errors.New("sio: invalid ack id")

	// ErrBadPayload reports a payload that is not valid JSON or whose shape
	// does not fit the packet type (CONNECT: absent or object; DISCONNECT:
	// absent; EVENT and ACK: array; CONNECT_ERROR: object or string), and an
	// EVENT payload whose event name is missing, not a string, too long or
	// reserved.
	ErrBadPayload = errors.New("sio: invalid payload")

	// ErrBinaryUnsupported reports a BINARY_EVENT or BINARY_ACK packet (or an
	// attachment count): binary attachments are not supported.
	ErrBinaryUnsupported = errors.New("sio: binary attachments are not supported")

	// ErrState reports a packet that is valid on the wire but not allowed in
	// the current session state (an event before CONNECT, a second CONNECT, a
	// packet for a namespace that is not connected, a client-sent open or
	// upgrade packet, a packet after close). The reference server closes the
	// connection in these cases, and so should the adapter.
	ErrState = errors.New("sio: packet not allowed in the current session state")
)
