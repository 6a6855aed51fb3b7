// Package client is the Go client of Talim Realtime's native WebSocket protocol
// (docs/protocol.md): the same semantics as the JavaScript client, for tests, the
// load tool and Go services.
//
// # Two levels
//
// Conn (DialRaw) is one connection: integer request ids, acks resolved to return
// values, error frames to *Error, server events to a handler, pings answered. It
// neither reconnects nor queues, and is what a load tool holds by the ten thousand.
//
// Client (New, Connect) adds everything an application needs to survive a network:
//
//   - Reconnect: when the connection drops, it reconnects with exponential backoff and
//     full jitter (Backoff: 250 ms doubling to 10 s; the wait before attempt n is
//     uniform in [0, min(Max, Initial·Factorⁿ)]), reset once a connection lived
//     StableAfter. It stops (Status() == StatusError) when retrying cannot help: a
//     refused token without TokenFunc, 403, or close codes 1003, 1007, 1008, 1009 and
//     4029. TokenFunc is called before every dial and again before the token's exp
//     (auth-refresh on the live connection).
//   - Resume: JoinRoom tracks a room and the highest seq delivered in it. After a
//     reconnect every tracked room is joined again with sinceSeq, chat-room-history
//     pages with hasMore are followed with get-chat-room-history {afterSeq}, and a gap
//     seen in live messages (seq > last+1) is fetched before the later messages are
//     delivered. The application receives each chat-message of a tracked room exactly
//     once, in seq order (On("chat-message"), OnMessage, Options.Handler). Duplicates
//     are recognised by seq, which the server guarantees unique and gap-free per room
//     (so this is deduplication by message id without keeping the ids).
//   - Outbox: Send never fails because the network is down. The message waits (with a
//     clientMsgId from crypto/rand) and is written after the reconnect and the
//     re-join, oldest first, one per ack; a message whose connection dropped before
//     its ack is written again with the same clientMsgId, which the server turns into
//     the original message. Send returns when the ack arrives. At most OutboxLimit
//     sends wait (ErrOutboxFull).
//   - Other requests (Request and the typed helpers) are not replayed: they fail with
//     ErrDisconnected when no connection is up or it drops before the answer.
//
// # Goroutines and memory
//
// A Client holds one long-lived goroutine: it is the reader of the current
// connection and, between connections, the loop that waits and redials. A writer
// goroutine exists only while frames wait to be written; it drains the queue in
// batches (one buffered flush per batch, write deadline WriteTimeout, buffer from a
// sync.Pool) and exits. Resume, gap fill and the outbox run as callbacks on the
// reader, never as goroutines. There is no timer besides the socket's read deadline
// (2.5 × the server's ping interval), except one for token refresh when TokenFunc is
// set and a short one after a rate_limited answer. An idle connection therefore
// costs one goroutine stack, the read buffer (ReadBufferSize, 2 KiB by default) and
// the Client/Conn structs; maps and queues are allocated when first used.
//
// # Callbacks
//
// Handlers (On, OnMessage, Options.Handler, Options.OnStatus, Conn.Go callbacks) run
// on the reader goroutine, one at a time, in frame order. They must not block, and
// must not wait for a request's answer (that answer is read by the same goroutine):
// start a goroutine for that. Close waits for the reader, so it must not be called
// from a handler either.
//
// # Errors
//
// Error frames come back as *Error (Code, Message, RetryAfterMs); a refused upgrade
// as *HandshakeError; a server close as *CloseError. ErrDisconnected, ErrClosed,
// ErrOutboxFull and ErrWriteQueueFull are sentinels to test with errors.Is; every
// error is wrapped with the command it belongs to.
package client
