package sio

import (
	"fmt"
	"strconv"
)

// Engine.IO v4 packet types (the numeric value of the leading digit).
const (
	EIOOpen    byte = 0 // server → client handshake
	EIOClose   byte = 1 // close the transport
	EIOPing    byte = 2 // server → client in v4
	EIOPong    byte = 3 // client → server in v4
	EIOMessage byte = 4 // carries a Socket.IO packet
	EIOUpgrade byte = 5 // transport upgrade (polling only)
	EIONoop    byte = 6 // polling only
)

// EIOPacket is one Engine.IO packet received in a WebSocket text frame.
type EIOPacket struct {
	// Type is the packet type, EIOOpen..EIONoop (the digit's value, not the
	// ASCII character).
	Type byte
	// Data is everything after the type digit; it aliases the frame.
	Data []byte
}

// ParseEIO splits a WebSocket text frame into an Engine.IO packet. Data
// aliases frame. Binary frames are not Engine.IO text packets: the adapter
// must refuse them before calling ParseEIO.
func ParseEIO(frame []byte) (EIOPacket, error) {
	if len(frame) == 0 {
		return EIOPacket{}, fmt.Errorf("%w: engine.io frame has no type", ErrEmpty)
	}
	c := frame[0]
	if c < '0' || c > '6' {
		return EIOPacket{}, fmt.Errorf("%w: engine.io type %q", ErrUnknownType, c)
	}
	return EIOPacket{Type: c - '0', Data: frame[1:]}, nil
}

// AppendEIO appends the encoding of p (type digit and data).
func AppendEIO(dst []byte, p EIOPacket) []byte {
	dst = append(dst, '0'+p.Type)
	return append(dst, p.Data...)
}

// AppendOpen appends the Engine.IO open packet for the WebSocket transport:
//
//	0{"sid":"<sid>","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
//
// pingIntervalMs and pingTimeoutMs are in milliseconds; maxPayload is the
// largest inbound frame (or polling POST body) the server accepts, in bytes.
func AppendOpen(dst []byte, sid string, pingIntervalMs, pingTimeoutMs, maxPayload int64) []byte {
	return appendOpen(dst, sid, `[]`, pingIntervalMs, pingTimeoutMs, maxPayload)
}

// AppendOpenPolling is AppendOpen for a session opened on the HTTP long-polling
// transport, which may upgrade to WebSocket: "upgrades":["websocket"].
func AppendOpenPolling(dst []byte, sid string, pingIntervalMs, pingTimeoutMs, maxPayload int64) []byte {
	return appendOpen(dst, sid, `["websocket"]`, pingIntervalMs, pingTimeoutMs, maxPayload)
}

func appendOpen(dst []byte, sid, upgrades string, pingIntervalMs, pingTimeoutMs, maxPayload int64) []byte {
	dst = append(dst, `0{"sid":`...)
	dst = appendJSONString(dst, sid)
	dst = append(dst, `,"upgrades":`...)
	dst = append(dst, upgrades...)
	dst = append(dst, `,"pingInterval":`...)
	dst = strconv.AppendInt(dst, pingIntervalMs, 10)
	dst = append(dst, `,"pingTimeout":`...)
	dst = strconv.AppendInt(dst, pingTimeoutMs, 10)
	dst = append(dst, `,"maxPayload":`...)
	dst = strconv.AppendInt(dst, maxPayload, 10)
	return append(dst, '}')
}

// AppendPing appends the Engine.IO ping packet "2" (sent by the server every
// pingInterval in v4; the client answers "3").
func AppendPing(dst []byte) []byte { return append(dst, '2') }

// AppendPong appends the Engine.IO pong packet "3" followed by data (the
// answer to a client ping, which v4 clients only send as "2probe" during a
// polling upgrade; kept for robustness).
func AppendPong(dst []byte, data []byte) []byte {
	dst = append(dst, '3')
	return append(dst, data...)
}

// AppendEIOClose appends the Engine.IO close packet "1".
func AppendEIOClose(dst []byte) []byte { return append(dst, '1') }
