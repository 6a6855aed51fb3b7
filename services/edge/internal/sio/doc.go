// Package sio implements the subset of the Socket.IO wire protocol that the
// edge gateway needs to serve unmodified socket.io-client v4 frontends
// (docs/protocol.md "Socket.IO clients"): an Engine.IO v4 + Socket.IO v5 packet codec for the
// WebSocket transport, and the per-connection session state machine the edge
// adapter drives.
//
// # Protocol versions
//
//   - Engine.IO protocol revision 4 (engine.io 6.x, engine.io-client 6.x,
//     query parameter EIO=4): https://github.com/socketio/engine.io-protocol
//   - Socket.IO protocol revision 5 (socket.io 3.x/4.x, socket.io-parser 4.x):
//     https://github.com/socketio/socket.io-protocol
//
// # Engine.IO layer
//
// Over WebSocket every Engine.IO packet is one text frame: a single type digit
// followed by the packet data.
//
//	0  open     server → client, JSON handshake:
//	            0{"sid":"...","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
//	1  close    either side
//	2  ping     server → client (in v4 the SERVER pings, every pingInterval)
//	3  pong     client → server (answer to a ping)
//	4  message  either side, carries one Socket.IO packet
//	5  upgrade  client → server (polling → websocket upgrade only)
//	6  noop     polling only
//
// # Socket.IO layer
//
// A Socket.IO packet is the data of an Engine.IO message packet:
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
//
//	0 CONNECT        40  or  40{"token":"..."}        reply 40{"sid":"<socket id>"}
//	1 DISCONNECT     41
//	2 EVENT          42["name",{...}]  or with ack id 17: 4217["name",{...}]
//	3 ACK            4317[{...}]
//	4 CONNECT_ERROR  44{"message":"..."}
//	5 BINARY_EVENT   451-["name",{"_placeholder":true,"num":0}]   (unsupported)
//	6 BINARY_ACK     4617 with attachments                       (unsupported)
//
// The namespace is omitted for the main namespace "/"; other namespaces are
// written as "/admin," right after the type (and attachment count).
//
// # Supported subset
//
//   - The codec handles Engine.IO packets one at a time, whichever transport
//     carried them: the edge's long-polling transport (services/edge/polling.go)
//     splits payloads at the record separator and runs the probe and upgrade
//     itself; Session.Handle sees the packets in order, as over WebSocket.
//   - No binary attachments: BINARY_EVENT and BINARY_ACK packets are refused
//     with [ErrBinaryUnsupported] and WebSocket binary frames must be refused
//     by the adapter.
//   - Only the main namespace "/". A CONNECT to any other namespace is
//     answered with CONNECT_ERROR {"message":"Invalid namespace"} (what the
//     reference server says), and the connection stays usable for "/".
//   - Events are named by strings (at most [MaxEventNameLen] characters, the
//     reserved Socket.IO names such as "connect" or "disconnect" are refused)
//     and carry at most one argument, the protocol's data object; extra
//     arguments are ignored. The server never asks the client for acks: ACK
//     packets from the client are ignored.
//
// # Buffers and allocations
//
// Parsers return sub-slices of their input (no copies): the caller must not
// reuse the frame buffer while the parsed packet is in use. Encoders append to
// a caller-provided buffer and do not allocate when it has enough capacity.
package sio
