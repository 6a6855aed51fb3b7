package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The outbox keeps every Send until its ack. A send is written at once when the
// client is connected, has re-joined its rooms and nothing older is waiting;
// otherwise it waits in order. After a reconnect the waiting sends (including those
// whose connection dropped before the ack) are written again one at a time, each
// after the previous ack, with their original clientMsgId: the server stores each
// exactly once and in the order they were made.

// SendOptions tune Send.
type SendOptions struct {
	// Type is the message type (default "text").
	Type string
	// ClientMsgID makes retries safe; generated (128 random bits) when empty.
	ClientMsgID string
}

type outItem struct {
	data      map[string]string
	done      chan sendResult // buffered: finish never blocks
	abandoned bool            // the caller gave up; do not write it again
}

type sendResult struct {
	msg Message
	err error
}

func (it *outItem) finish(m Message, err error) {
	select {
	case it.done <- sendResult{m, err}:
	default:
	}
}

// NewClientMsgID returns a random id for SendOptions.ClientMsgID.
func NewClientMsgID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b[:])
}

// Send posts a message and returns it as stored. While disconnected the message waits
// in the outbox and is sent after the reconnect; a send whose connection dropped
// before the ack is sent again with the same clientMsgId. rate_limited answers are
// retried after retryAfterMs; other error frames are returned. ctx bounds the wait
// (no CommandTimeout here: waiting for a reconnect is the point): if it ends before
// the message is written, the message is dropped from the outbox; if it was written,
// it may still be stored. Fails with ErrOutboxFull past Options.OutboxLimit.
func (c *Client) Send(ctx context.Context, roomID, content string, opts SendOptions) (Message, error) {
	id := opts.ClientMsgID
	if id == "" {
		id = NewClientMsgID()
	}
	data := map[string]string{"roomId": roomID, "content": content, "clientMsgId": id}
	if opts.Type != "" {
		data["type"] = opts.Type
	}
	it := &outItem{data: data, done: make(chan sendResult, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Message{}, fmt.Errorf("client: send: %w", ErrClosed)
	}
	if len(c.outbox)+len(c.inflight) >= c.opts.OutboxLimit {
		c.mu.Unlock()
		return Message{}, fmt.Errorf("client: send: %w", ErrOutboxFull)
	}
	if len(c.outbox) == 0 && c.canWriteLocked() {
		c.writeLocked(it)
	} else {
		c.outbox = append(c.outbox, it)
		c.pumpLocked()
	}
	c.mu.Unlock()
	select {
	case r := <-it.done:
		return r.msg, r.err
	case <-ctx.Done():
		c.mu.Lock()
		it.abandoned = true
		c.outbox = removeItem(c.outbox, it)
		c.mu.Unlock()
		return Message{}, fmt.Errorf("client: send: %w", ctx.Err())
	}
}

// Outbox returns the number of sends waiting for their ack.
func (c *Client) Outbox() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.outbox) + len(c.inflight)
}

func (c *Client) canWriteLocked() bool {
	return c.conn != nil && c.resumed && !time.Now().Before(c.holdUntil)
}

// pumpLocked writes the oldest waiting send when nothing is in flight.
func (c *Client) pumpLocked() {
	for len(c.outbox) > 0 && len(c.inflight) == 0 && c.canWriteLocked() {
		it := c.outbox[0]
		c.outbox = c.outbox[1:]
		if it.abandoned {
			continue
		}
		if !c.writeLocked(it) {
			return
		}
	}
	if len(c.outbox) == 0 {
		c.outbox = nil
	}
}

// writeLocked writes it on the current connection and tracks it as in flight.
func (c *Client) writeLocked(it *outItem) bool {
	cn := c.conn
	err := cn.Go("send-chat-message", it.data, func(raw json.RawMessage, err error) { c.onSendAck(cn, it, raw, err) })
	if err != nil {
		c.outbox = append([]*outItem{it}, c.outbox...)
		return false
	}
	c.inflight = append(c.inflight, it)
	return true
}

// onSendAck runs on the reader goroutine.
func (c *Client) onSendAck(cn *Conn, it *outItem, raw json.RawMessage, err error) {
	if isDisconnect(err) {
		return // detach puts it back in the outbox
	}
	c.mu.Lock()
	if c.conn != cn {
		c.mu.Unlock()
		return
	}
	c.inflight = removeItem(c.inflight, it)
	var se *Error
	if errors.As(err, &se) && se.Code == CodeRateLimited && !it.abandoned && !c.closed {
		wait := max(time.Duration(se.RetryAfterMs)*time.Millisecond, 50*time.Millisecond)
		c.outbox = append([]*outItem{it}, c.outbox...)
		c.holdLocked(wait)
		c.mu.Unlock()
		return
	}
	c.pumpLocked()
	c.mu.Unlock()
	if err != nil {
		it.finish(Message{}, fmt.Errorf("client: send: %w", err))
		return
	}
	var d struct {
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		it.finish(Message{}, fmt.Errorf("client: decode send ack: %w", err))
		return
	}
	m, err := decodeMessage(d.Message)
	if err != nil {
		err = fmt.Errorf("client: decode send ack: %w", err)
	}
	it.finish(m, err)
}

// holdLocked pauses outbox writes (rate_limited) and resumes them with a timer.
func (c *Client) holdLocked(d time.Duration) {
	c.holdUntil = time.Now().Add(d)
	if c.holdTimer != nil {
		c.holdTimer.Stop()
	}
	c.holdTimer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.pumpLocked()
	})
}

func removeItem(list []*outItem, it *outItem) []*outItem {
	for i, o := range list {
		if o == it {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}
