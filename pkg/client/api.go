package client

import (
	"context"
	"encoding/json"
	"time"
)

// Message is a chat message (docs/protocol.md "Chat"). Every field is set by the server.
type Message struct {
	ID          string     `json:"id"`
	RoomID      string     `json:"roomId"`
	Seq         int64      `json:"seq"`
	SenderID    string     `json:"senderId"`
	SenderName  string     `json:"senderName"`
	Type        string     `json:"type"`
	Content     string     `json:"content"`
	ClientMsgID string     `json:"clientMsgId,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	EditedAt    *time.Time `json:"editedAt"`
	Deleted     bool       `json:"deleted"`
	// Raw is the message object as received, with fields this version does not know.
	Raw json.RawMessage `json:"-"`
}

// Room is an entry of list-rooms (and the room of open-direct-room).
type Room struct {
	RoomID      string   `json:"roomId"`
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Role        string   `json:"role"`
	LastSeq     int64    `json:"lastSeq"`
	LastReadSeq int64    `json:"lastReadSeq"`
	Unread      int64    `json:"unread"`
	LastMessage *Message `json:"lastMessage"`
	// Raw is the room object as received.
	Raw json.RawMessage `json:"-"`
}

// HistoryOptions select a page of get-chat-room-history: BeforeSeq or AfterSeq (zero
// means unset), Limit (default 50, max 200).
type HistoryOptions struct {
	BeforeSeq int64
	AfterSeq  int64
	Limit     int
}

// HistoryPage is a page of messages, oldest first.
type HistoryPage struct {
	RoomID   string
	Messages []Message
	HasMore  bool
}

// ReadState is the ack of mark-message-read.
type ReadState struct {
	RoomID      string `json:"roomId"`
	LastReadSeq int64  `json:"lastReadSeq"`
	Unread      int64  `json:"unread"`
}

// Notification is the notification object of docs/protocol.md "Notifications".
type Notification struct {
	ID         string            `json:"id"`
	Category   string            `json:"category"`
	Title      string            `json:"title"`
	Body       string            `json:"body"`
	Data       map[string]string `json:"data,omitempty"`
	Priority   string            `json:"priority"`
	RequireAck bool              `json:"requireAck"`
	CreatedAt  time.Time         `json:"createdAt"`
	ReadAt     *time.Time        `json:"readAt"`
	AckedAt    *time.Time        `json:"ackedAt"`
	ExpiresAt  *time.Time        `json:"expiresAt"`
}

// NotificationsPage is the ack of list-notifications.
type NotificationsPage struct {
	Notifications []Notification `json:"notifications"`
	HasMore       bool           `json:"hasMore"`
	Unread        int64          `json:"unread"`
}

// ListNotificationsOptions tune ListNotifications; Before is a notification id.
type ListNotificationsOptions struct {
	UnreadOnly bool   `json:"unreadOnly,omitempty"`
	Before     string `json:"before,omitempty"`
	Limit      int    `json:"limit,omitempty"`
}

// Presence is a user's status: online, away, busy, offline or unknown.
type Presence struct {
	UserID     string     `json:"userId"`
	Status     string     `json:"status"`
	LastSeenAt *time.Time `json:"lastSeenAt"`
}

// OnMessage calls fn for every chat message of the tracked rooms (exactly once, in
// seq order per room) and for live messages of other rooms. Same rules as On.
func (c *Client) OnMessage(fn func(Message)) (unsubscribe func()) {
	return c.On("chat-message", func(data json.RawMessage) {
		var d struct {
			Message json.RawMessage `json:"message"`
		}
		if json.Unmarshal(data, &d) != nil {
			return
		}
		if m, err := decodeMessage(d.Message); err == nil {
			fn(m)
		}
	})
}

// OnMessageUpdated calls fn for edits and deletions (chat-message-updated).
func (c *Client) OnMessageUpdated(fn func(Message)) (unsubscribe func()) {
	return c.On("chat-message-updated", func(data json.RawMessage) {
		var d struct {
			Message json.RawMessage `json:"message"`
		}
		if json.Unmarshal(data, &d) != nil {
			return
		}
		if m, err := decodeMessage(d.Message); err == nil {
			fn(m)
		}
	})
}

// OnNotification calls fn for every new notification.
func (c *Client) OnNotification(fn func(Notification)) (unsubscribe func()) {
	return c.On("notification", func(data json.RawMessage) {
		var d struct {
			Notification Notification `json:"notification"`
		}
		if json.Unmarshal(data, &d) == nil {
			fn(d.Notification)
		}
	})
}

// OnPresence calls fn for presence changes of watched users, and with the current
// status of every watched user after a reconnect.
func (c *Client) OnPresence(fn func(Presence)) (unsubscribe func()) {
	return c.On("presence", func(data json.RawMessage) {
		var p Presence
		if json.Unmarshal(data, &p) == nil {
			fn(p)
		}
	})
}

// History fetches a page of a room's messages.
func (c *Client) History(ctx context.Context, roomID string, opts HistoryOptions) (HistoryPage, error) {
	data := map[string]any{"roomId": roomID}
	if opts.BeforeSeq > 0 {
		data["beforeSeq"] = opts.BeforeSeq
	}
	if opts.AfterSeq > 0 {
		data["afterSeq"] = opts.AfterSeq
	}
	if opts.Limit > 0 {
		data["limit"] = opts.Limit
	}
	var h historyData
	if err := c.request(ctx, "get-chat-room-history", data, &h); err != nil {
		return HistoryPage{}, err
	}
	return HistoryPage{RoomID: h.RoomID, Messages: decodeMessages(h.Messages, c), HasMore: h.HasMore}, nil
}

// MarkRead moves the read marker of a room forward to seq.
func (c *Client) MarkRead(ctx context.Context, roomID string, seq int64) (ReadState, error) {
	var st ReadState
	err := c.request(ctx, "mark-message-read", map[string]any{"roomId": roomID, "seq": seq}, &st)
	return st, err
}

// Typing tells the room's other members that this user is (not) typing.
func (c *Client) Typing(ctx context.Context, roomID string, isTyping bool) error {
	return c.request(ctx, "typing", map[string]any{"roomId": roomID, "isTyping": isTyping}, nil)
}

// Edit changes the content of one of this user's messages.
func (c *Client) Edit(ctx context.Context, roomID, messageID, content string) (Message, error) {
	return c.messageRequest(ctx, "edit-chat-message", map[string]string{"roomId": roomID, "messageId": messageID, "content": content})
}

// Delete deletes a message (sender, room owner or teacher); history keeps a tombstone.
func (c *Client) Delete(ctx context.Context, roomID, messageID string) (Message, error) {
	return c.messageRequest(ctx, "delete-chat-message", map[string]string{"roomId": roomID, "messageId": messageID})
}

func (c *Client) messageRequest(ctx context.Context, event string, data any) (Message, error) {
	var d struct {
		Message json.RawMessage `json:"message"`
	}
	if err := c.request(ctx, event, data, &d); err != nil {
		return Message{}, err
	}
	return decodeMessage(d.Message)
}

// ListRooms returns the user's rooms, most recent activity first.
func (c *Client) ListRooms(ctx context.Context) ([]Room, error) {
	var d struct {
		Rooms []json.RawMessage `json:"rooms"`
	}
	if err := c.request(ctx, "list-rooms", struct{}{}, &d); err != nil {
		return nil, err
	}
	rooms := make([]Room, 0, len(d.Rooms))
	for _, raw := range d.Rooms {
		var r Room
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		r.Raw = raw
		rooms = append(rooms, r)
	}
	return rooms, nil
}

// OpenDirectRoom returns the 1:1 room with userID, created the first time.
func (c *Client) OpenDirectRoom(ctx context.Context, userID string) (Room, error) {
	var d struct {
		Room json.RawMessage `json:"room"`
	}
	if err := c.request(ctx, "open-direct-room", map[string]string{"userId": userID}, &d); err != nil {
		return Room{}, err
	}
	var r Room
	if err := json.Unmarshal(d.Room, &r); err != nil {
		return Room{}, err
	}
	r.Raw = d.Room
	return r, nil
}

// ListNotifications returns the user's notifications, newest first.
func (c *Client) ListNotifications(ctx context.Context, opts ListNotificationsOptions) (NotificationsPage, error) {
	var p NotificationsPage
	err := c.request(ctx, "list-notifications", opts, &p)
	return p, err
}

// MarkNotificationsRead marks the given notifications read (all of them when ids is
// empty) and returns the unread count.
func (c *Client) MarkNotificationsRead(ctx context.Context, ids ...string) (int64, error) {
	var data any = map[string]any{"all": true}
	if len(ids) > 0 {
		data = map[string]any{"ids": ids}
	}
	var d struct {
		Unread int64 `json:"unread"`
	}
	err := c.request(ctx, "mark-notification-read", data, &d)
	return d.Unread, err
}

// AckNotification acknowledges a requireAck notification (idempotent).
func (c *Client) AckNotification(ctx context.Context, id string) (time.Time, error) {
	var d struct {
		AckedAt time.Time `json:"ackedAt"`
	}
	err := c.request(ctx, "ack-notification", map[string]string{"id": id}, &d)
	return d.AckedAt, err
}

// SubscribePresence watches users (up to 200 per connection) and returns their
// status. The subscription is renewed after every reconnect.
func (c *Client) SubscribePresence(ctx context.Context, userIDs ...string) ([]Presence, error) {
	var d struct {
		Presence []Presence `json:"presence"`
	}
	if err := c.request(ctx, "subscribe-presence", map[string]any{"userIds": userIDs}, &d); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.presence == nil {
		c.presence = make(map[string]struct{})
	}
	for _, id := range userIDs {
		c.presence[id] = struct{}{}
	}
	c.mu.Unlock()
	return d.Presence, nil
}

// UnsubscribePresence stops watching users.
func (c *Client) UnsubscribePresence(ctx context.Context, userIDs ...string) error {
	c.mu.Lock()
	for _, id := range userIDs {
		delete(c.presence, id)
	}
	c.mu.Unlock()
	return c.request(ctx, "unsubscribe-presence", map[string]any{"userIds": userIDs}, nil)
}

// SetStatus sets this user's status: online, away, busy or invisible.
func (c *Client) SetStatus(ctx context.Context, status string) (string, error) {
	var d struct {
		Status string `json:"status"`
	}
	err := c.request(ctx, "set-status", map[string]string{"status": status}, &d)
	return d.Status, err
}

// Ping sends the edge-local ping command and waits for its ack.
func (c *Client) Ping(ctx context.Context) error {
	return c.request(ctx, "ping", nil, nil)
}

// resubscribePresenceLocked renews presence subscriptions on a new connection and
// reports the current statuses as presence events.
func (c *Client) resubscribePresenceLocked(cn *Conn) {
	if len(c.presence) == 0 {
		return
	}
	ids := make([]string, 0, len(c.presence))
	for id := range c.presence {
		ids = append(ids, id)
	}
	_ = cn.Go("subscribe-presence", map[string]any{"userIds": ids}, func(raw json.RawMessage, err error) {
		if err != nil {
			if !isDisconnect(err) {
				c.opts.Logger.Warn("client: presence resubscribe failed", "err", err)
			}
			return
		}
		var d struct {
			Presence []json.RawMessage `json:"presence"`
		}
		if json.Unmarshal(raw, &d) != nil {
			return
		}
		for _, p := range d.Presence {
			c.emit(Event{Name: "presence", Data: p})
		}
	})
}
