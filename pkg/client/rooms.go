package client

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// Resume: every room joined with JoinRoom is tracked with `last`, the highest seq
// delivered to the application, all lower ones having been delivered too. Messages
// reach the application only through deliver, only from the reader goroutine, and
// only when their seq is last+1: later ones wait in `pending` while the missing range
// is fetched, earlier ones are duplicates. This gives exactly-once, in-order
// delivery per room whatever the network does (seq is gap-free and unique per room,
// so deduplicating by seq is deduplicating by message id).

// historyPageLimit is the page size asked for while resuming or filling a gap (the
// server's maximum).
const historyPageLimit = 200

// maxPending bounds the messages buffered behind a gap; past it the gap is skipped
// (logged) rather than growing without limit.
const maxPending = 10000

type room struct {
	id       string
	based    bool  // last is meaningful
	last     int64 // highest contiguous seq delivered
	pending  map[int64]Message
	early    []Message // live messages received before the join ack set last
	join     *joinWait // a JoinRoom call waiting
	resuming bool      // a join with sinceSeq (and its history pages) is in progress
	ackDone  bool
	histDone bool
	filling  bool // a gap-fill request is in flight
}

type joinWait struct {
	initial  bool // no sinceSeq: the first history page is returned, not delivered
	done     chan struct{}
	acked    bool
	hist     json.RawMessage // a history that arrived before the ack
	result   JoinResult
	err      error
	finished bool
}

func (w *joinWait) finish(err error) {
	if w == nil || w.finished {
		return
	}
	w.finished, w.err = true, err
	close(w.done)
}

// JoinOptions tune JoinRoom.
type JoinOptions struct {
	// Limit is the number of latest messages returned (default 50, max 200).
	Limit int
	// Resume, with SinceSeq, joins as after a reconnect: every message with a higher
	// seq is delivered as a chat-message event (in order, paged as needed), nothing
	// is returned in JoinResult.History.
	Resume   bool
	SinceSeq int64
}

// JoinResult is the join ack, plus the latest messages when not resuming.
type JoinResult struct {
	RoomID      string `json:"roomId"`
	LastSeq     int64  `json:"lastSeq"`
	LastReadSeq int64  `json:"lastReadSeq"`
	Unread      int64  `json:"unread"`
	// History holds the latest messages up to LastSeq, oldest first. Messages after
	// LastSeq are delivered as chat-message events.
	History []Message `json:"-"`
	// HasMore says older messages exist (page with History(BeforeSeq)).
	HasMore bool `json:"-"`
}

type historyData struct {
	RoomID   string            `json:"roomId"`
	Messages []json.RawMessage `json:"messages"`
	HasMore  bool              `json:"hasMore"`
}

// JoinRoom joins a room on the current connection and tracks it: after every
// reconnect it is joined again with sinceSeq and the missed messages are delivered as
// chat-message events, exactly once and in seq order. It returns after the ack and
// the first history page. Joining a room that is already tracked resumes it from the
// last delivered seq.
func (c *Client) JoinRoom(ctx context.Context, roomID string, opts JoinOptions) (JoinResult, error) {
	c.mu.Lock()
	if c.closed || c.conn == nil {
		err := ErrDisconnected
		if c.closed {
			err = ErrClosed
		}
		c.mu.Unlock()
		return JoinResult{}, fmt.Errorf("client: join %s: %w", roomID, err)
	}
	cn := c.conn
	if old := c.rooms[roomID]; old != nil && old.based && !opts.Resume {
		opts.Resume, opts.SinceSeq = true, old.last
	}
	r := &room{id: roomID}
	w := &joinWait{initial: !opts.Resume, done: make(chan struct{})}
	r.join = w
	data := map[string]any{"roomId": roomID}
	if opts.Resume {
		r.based, r.last, r.resuming = true, opts.SinceSeq, true
		data["sinceSeq"] = opts.SinceSeq
	}
	if opts.Limit > 0 {
		data["limit"] = opts.Limit
	}
	if c.rooms == nil {
		c.rooms = make(map[string]*room)
	}
	c.rooms[roomID] = r
	err := cn.Go("join-chat-room", data, func(raw json.RawMessage, err error) { c.onJoinAck(cn, r, w, raw, err) })
	if err != nil {
		delete(c.rooms, roomID)
	}
	c.mu.Unlock()
	if err != nil {
		return JoinResult{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.CommandTimeout)
		defer cancel()
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		c.mu.Lock()
		if c.rooms[roomID] == r && !r.based {
			delete(c.rooms, roomID)
		}
		r.join = nil
		c.mu.Unlock()
		return JoinResult{}, fmt.Errorf("client: join %s: %w", roomID, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return w.result, w.err
}

// LeaveRoom stops tracking a room and leaves it on the current connection.
func (c *Client) LeaveRoom(ctx context.Context, roomID string) error {
	c.mu.Lock()
	if r := c.rooms[roomID]; r != nil {
		r.join.finish(fmt.Errorf("client: join %s: left", roomID))
		delete(c.rooms, roomID)
	}
	c.mu.Unlock()
	return c.request(ctx, "leave-chat-room", map[string]string{"roomId": roomID}, nil)
}

// Rooms returns the tracked rooms with the highest seq delivered in each.
func (c *Client) Rooms() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.rooms))
	for id, r := range c.rooms {
		out[id] = r.last
	}
	return out
}

// resumeLocked re-joins every tracked room on a new connection.
func (c *Client) resumeLocked(cn *Conn) {
	c.resumed = false
	for _, r := range c.rooms {
		if !r.based {
			continue // an initial join on the old connection: it fails by itself
		}
		r.join.finish(nil)
		r.join = nil
		r.resuming, r.ackDone, r.histDone, r.filling = true, false, false, false
		data := map[string]any{"roomId": r.id, "sinceSeq": r.last}
		if err := cn.Go("join-chat-room", data, func(raw json.RawMessage, err error) { c.onJoinAck(cn, r, nil, raw, err) }); err != nil {
			return // the connection is already gone; the next one resumes
		}
	}
	c.resubscribePresenceLocked(cn)
	c.checkResumedLocked()
}

// checkResumedLocked flushes the outbox once every tracked room has been re-joined.
func (c *Client) checkResumedLocked() {
	if c.conn == nil || c.resumed {
		return
	}
	for _, r := range c.rooms {
		if r.resuming && r.join == nil {
			return
		}
	}
	c.resumed = true
	c.pumpLocked()
}

// onJoinAck runs on the reader goroutine.
func (c *Client) onJoinAck(cn *Conn, r *room, w *joinWait, raw json.RawMessage, err error) {
	var out []Message
	c.mu.Lock()
	defer func() {
		c.mu.Unlock()
		c.deliver(out)
	}()
	current := c.rooms[r.id] == r
	if err != nil {
		w.finish(err)
		if !current {
			return
		}
		if isDisconnect(err) {
			if !r.based {
				delete(c.rooms, r.id)
			}
			return
		}
		c.opts.Logger.Warn("client: join failed, room dropped", "roomId", r.id, "err", err)
		delete(c.rooms, r.id)
		c.checkResumedLocked()
		return
	}
	if !current || c.conn != cn {
		w.finish(fmt.Errorf("client: join %s: %w", r.id, ErrDisconnected))
		return
	}
	var res JoinResult
	if err := json.Unmarshal(raw, &res); err != nil {
		c.opts.Logger.Warn("client: bad join ack", "roomId", r.id, "err", err)
	}
	if w != nil {
		w.acked = true
		w.result = res
	}
	if !r.based {
		r.based, r.last = true, res.LastSeq
		for _, m := range r.early {
			out = r.add(m, out)
		}
		r.early = nil
		if w != nil && w.hist != nil {
			out = c.initialHistoryLocked(r, w, w.hist, out)
		}
		c.maybeFillLocked(cn, r)
		return
	}
	if w != nil && !w.initial {
		w.finish(nil)
		r.join = nil
	}
	if r.resuming {
		r.ackDone = true
		c.finishResumeLocked(cn, r)
	}
}

// onRoomHistory consumes chat-room-history events of tracked rooms. It reports
// whether the event was consumed (not passed to the application as is).
func (c *Client) onRoomHistory(ev Event) bool {
	var h historyData
	if err := json.Unmarshal(ev.Data, &h); err != nil {
		return false
	}
	var out []Message
	c.mu.Lock()
	r := c.rooms[h.RoomID]
	cn := c.conn
	if r == nil || cn == nil {
		c.mu.Unlock()
		return false
	}
	passThrough := false
	switch w := r.join; {
	case w != nil && w.initial && !r.based:
		w.hist = ev.Data // the ack comes later and sets the baseline
	case w != nil && w.initial:
		out = c.initialHistoryLocked(r, w, ev.Data, out)
		passThrough = true
	default:
		top := r.last
		for _, m := range decodeMessages(h.Messages, c) {
			top = max(top, m.Seq)
			out = r.add(m, out)
		}
		if r.resuming && !r.histDone {
			if h.HasMore && len(h.Messages) > 0 {
				c.pageLocked(cn, r, top)
			} else {
				r.histDone = true
				c.finishResumeLocked(cn, r)
			}
		} else {
			c.maybeFillLocked(cn, r)
		}
	}
	c.mu.Unlock()
	c.deliver(out)
	if passThrough {
		c.emit(ev)
	}
	return true
}

// initialHistoryLocked splits the first history of a JoinRoom without resume: up to
// the ack's lastSeq it is the result, after it new messages to deliver.
func (c *Client) initialHistoryLocked(r *room, w *joinWait, data json.RawMessage, out []Message) []Message {
	var h historyData
	if err := json.Unmarshal(data, &h); err != nil {
		c.opts.Logger.Warn("client: bad history", "roomId", r.id, "err", err)
	}
	for _, m := range decodeMessages(h.Messages, c) {
		if m.Seq <= r.last {
			w.result.History = append(w.result.History, m)
		} else {
			out = r.add(m, out)
		}
	}
	w.result.HasMore = h.HasMore
	w.hist = nil
	w.finish(nil)
	r.join = nil
	return out
}

func (c *Client) pageLocked(cn *Conn, r *room, after int64) {
	data := map[string]any{"roomId": r.id, "afterSeq": after, "limit": historyPageLimit}
	err := cn.Go("get-chat-room-history", data, func(raw json.RawMessage, err error) {
		var out []Message
		c.mu.Lock()
		defer func() {
			c.mu.Unlock()
			c.deliver(out)
		}()
		if c.rooms[r.id] != r || c.conn != cn || !r.resuming {
			return
		}
		if err != nil {
			if !isDisconnect(err) {
				c.opts.Logger.Warn("client: history page failed", "roomId", r.id, "err", err)
				r.histDone = true
				c.finishResumeLocked(cn, r)
			}
			return
		}
		var h historyData
		_ = json.Unmarshal(raw, &h)
		top := r.last
		for _, m := range decodeMessages(h.Messages, c) {
			top = max(top, m.Seq)
			out = r.add(m, out)
		}
		if h.HasMore && len(h.Messages) > 0 {
			c.pageLocked(cn, r, top)
			return
		}
		r.histDone = true
		c.finishResumeLocked(cn, r)
	})
	if err != nil {
		r.histDone = true // the connection is gone; the next one resumes
	}
}

func (c *Client) finishResumeLocked(cn *Conn, r *room) {
	if !r.resuming || !r.ackDone || !r.histDone {
		return
	}
	r.resuming = false
	c.maybeFillLocked(cn, r)
	c.checkResumedLocked()
}

// onChatMessage orders and dedupes chat-message events of tracked rooms.
func (c *Client) onChatMessage(ev Event) bool {
	var d struct {
		Message json.RawMessage `json:"message"`
	}
	if json.Unmarshal(ev.Data, &d) != nil || len(d.Message) == 0 {
		return false
	}
	m, err := decodeMessage(d.Message)
	if err != nil {
		return false
	}
	var out []Message
	c.mu.Lock()
	r := c.rooms[m.RoomID]
	if r == nil {
		c.mu.Unlock()
		return false
	}
	if !r.based {
		r.early = append(r.early, m)
	} else {
		out = r.add(m, nil)
		if c.conn != nil {
			c.maybeFillLocked(c.conn, r)
		}
	}
	c.mu.Unlock()
	c.deliver(out)
	return true
}

// add records m and appends to out what became deliverable, in seq order.
func (r *room) add(m Message, out []Message) []Message {
	if m.Seq <= r.last {
		return out
	}
	if m.Seq > r.last+1 {
		if r.pending == nil {
			r.pending = make(map[int64]Message)
		}
		r.pending[m.Seq] = m
		return out
	}
	out = append(out, m)
	r.last = m.Seq
	for {
		next, ok := r.pending[r.last+1]
		if !ok {
			break
		}
		delete(r.pending, next.Seq)
		out = append(out, next)
		r.last = next.Seq
	}
	if len(r.pending) == 0 {
		r.pending = nil
	}
	return out
}

// skipGap gives up on the missing range: the pending messages are delivered in order.
func (r *room) skipGap(out []Message) []Message {
	seqs := make([]int64, 0, len(r.pending))
	for s := range r.pending {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for _, s := range seqs {
		if s > r.last {
			out = append(out, r.pending[s])
			r.last = s
		}
	}
	r.pending = nil
	return out
}

// maybeFillLocked fetches the range between last and the first pending message.
func (c *Client) maybeFillLocked(cn *Conn, r *room) {
	if r.resuming || r.filling || len(r.pending) == 0 || !r.based {
		return
	}
	first := int64(-1)
	for s := range r.pending {
		if first < 0 || s < first {
			first = s
		}
	}
	limit := min(first-r.last-1, historyPageLimit)
	data := map[string]any{"roomId": r.id, "afterSeq": r.last, "limit": limit}
	from := r.last
	r.filling = true
	c.opts.Logger.Debug("client: gap, fetching", "roomId", r.id, "afterSeq", from, "limit", limit)
	err := cn.Go("get-chat-room-history", data, func(raw json.RawMessage, err error) {
		var out []Message
		c.mu.Lock()
		defer func() {
			c.mu.Unlock()
			c.deliver(out)
		}()
		if c.rooms[r.id] != r || !r.filling {
			return
		}
		r.filling = false
		if err != nil {
			if !isDisconnect(err) {
				c.opts.Logger.Warn("client: gap fill failed; retried on the next message", "roomId", r.id, "err", err)
			}
			return
		}
		var h historyData
		_ = json.Unmarshal(raw, &h)
		for _, m := range decodeMessages(h.Messages, c) {
			out = r.add(m, out)
		}
		if len(r.pending) == 0 {
			return
		}
		if r.last == from || len(r.pending) > maxPending {
			c.opts.Logger.Warn("client: gap not fillable, skipped", "roomId", r.id, "afterSeq", r.last)
			out = r.skipGap(out)
			return
		}
		if c.conn == cn {
			c.maybeFillLocked(cn, r)
		}
	})
	if err != nil {
		r.filling = false
	}
}

// deliver hands ordered messages to the application; reader goroutine only.
func (c *Client) deliver(out []Message) {
	for _, m := range out {
		data := make([]byte, 0, len(m.Raw)+12)
		data = append(data, `{"message":`...)
		data = append(data, m.Raw...)
		data = append(data, '}')
		c.emit(Event{Name: "chat-message", Data: data})
	}
}

func decodeMessage(raw json.RawMessage) (Message, error) {
	var m Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, err
	}
	m.Raw = raw
	return m, nil
}

func decodeMessages(raws []json.RawMessage, c *Client) []Message {
	out := make([]Message, 0, len(raws))
	for _, raw := range raws {
		m, err := decodeMessage(raw)
		if err != nil {
			c.opts.Logger.Warn("client: bad message in history", "err", err)
			continue
		}
		out = append(out, m)
	}
	return out
}
