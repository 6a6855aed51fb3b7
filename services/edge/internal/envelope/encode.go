package envelope

import (
	"strconv"

	"github.com/talim/realtime/services/edge/internal/jsonesc"
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

// AppendString appends s as a JSON string (internal/jsonesc, the escaper shared with
// the Socket.IO encoder).
func AppendString(dst []byte, s string) []byte { return jsonesc.AppendString(dst, s) }
