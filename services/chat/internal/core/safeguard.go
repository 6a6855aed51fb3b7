package core

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/talim/realtime/pkg/webhook"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/safeguard/rules"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Notifier tells the safeguarding leads about a report (the notification
// service, with requireAck). key makes a retried call create nothing new.
type Notifier interface {
	NotifyLeads(ctx context.Context, leads []string, title, body string, data map[string]string, key string) error
}

// ReportReasons is the fixed list of report-message reasons (docs/protocol.md "Safeguarding").
var ReportReasons = []string{"bullying", "harassment", "inappropriate", "self_harm", "grooming", "personal_data", "spam", "other"}

// MaxReportText bounds a report's free text, in characters.
const MaxReportText = 1000

type reportReq struct {
	RoomID    string `json:"roomId"`
	MessageID string `json:"messageId"`
	Reason    string `json:"reason"`
	Text      string `json:"text"`
}

func (r *reportReq) check() error {
	if err := firstErr(CheckID("roomId", r.RoomID), CheckID("messageId", r.MessageID)); err != nil {
		return err
	}
	if !slices.Contains(ReportReasons, r.Reason) {
		return command.BadRequest("reason must be one of %v", ReportReasons)
	}
	if utf8.RuneCountInString(r.Text) > MaxReportText || !utf8.ValidString(r.Text) {
		return command.BadRequest("text is at most %d characters of valid UTF-8", MaxReportText)
	}
	return nil
}

// reportMessage stores a report of a message of a room the reporter is in, and
// tells the school's safeguarding leads. Reporting the same message again is
// idempotent (the first report is returned).
func (c *Core) reportMessage(ctx context.Context, cmd *edgev1.Command, req *reportReq) (*edgev1.Reply, error) {
	me := cmd.GetIdentity().GetUserId()
	if _, _, err := c.member(ctx, req.RoomID, me); err != nil {
		return nil, err
	}
	if _, err := c.roomMessage(ctx, req.RoomID, req.MessageID); err != nil {
		return nil, err
	}
	r := store.Report{ID: reportID(me, req.MessageID), School: DefaultSchool, RoomID: req.RoomID, MessageID: req.MessageID,
		ReporterID: me, Reason: req.Reason, Text: req.Text, Status: "open", CreatedAt: store.Now()}
	if err := c.raiseReport(ctx, r); err != nil {
		return nil, err
	}
	return command.OK(map[string]any{"reportId": r.ID, "status": "open"})
}

func reportID(reporter, messageID string) string {
	h := sha256.Sum256([]byte(reporter + "\x00" + messageID))
	return fmt.Sprintf("rep_%x", h[:12])
}

// raiseReport stores r and, when it is new, notifies the leads (best effort:
// the review queue is the record; a failed notification is logged).
func (c *Core) raiseReport(ctx context.Context, r store.Report) error {
	created, err := c.guard.AddReport(ctx, r)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	// Also when it existed: a retry writes the same event (its id derives from
	// the report id), so a first attempt that failed here is made good.
	if err := c.PublishReportCreated(ctx, ReportCreated{ReportID: r.ID, RoomID: r.RoomID, MessageID: r.MessageID,
		ReporterID: r.ReporterID, Reason: r.Reason, CreatedAt: r.CreatedAt}); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if !created || c.notifier == nil {
		return nil
	}
	lp, err := c.policy(ctx, r.School)
	if err != nil || len(lp.Leads) == 0 {
		c.log.Warn("report raised with no safeguarding lead to notify", "report", r.ID, "err", err)
		return nil
	}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	// No message content in the notification: the lead opens the review queue.
	if err := c.notifier.NotifyLeads(nctx, lp.Leads, "Safeguarding report", "A message was reported ("+r.Reason+").",
		map[string]string{"reportId": r.ID, "roomId": r.RoomID, "messageId": r.MessageID, "reason": r.Reason}, r.ID); err != nil {
		c.log.Error("notify safeguarding leads", "report", r.ID, "err", err)
	}
	return nil
}

type blockReq struct {
	UserID string `json:"userId"`
}

func (r *blockReq) check() error { return CheckID("userId", r.UserID) }

func (c *Core) blockUser(ctx context.Context, cmd *edgev1.Command, req *blockReq) (*edgev1.Reply, error) {
	return c.setBlock(ctx, cmd, req, true)
}

func (c *Core) unblockUser(ctx context.Context, cmd *edgev1.Command, req *blockReq) (*edgev1.Reply, error) {
	return c.setBlock(ctx, cmd, req, false)
}

func (c *Core) setBlock(ctx context.Context, cmd *edgev1.Command, req *blockReq, on bool) (*edgev1.Reply, error) {
	me := cmd.GetIdentity().GetUserId()
	if req.UserID == me {
		return nil, command.BadRequest("userId must be another user")
	}
	if err := c.guard.SetBlock(ctx, me, req.UserID, on, store.Now()); err != nil {
		return nil, fmt.Errorf("block: %w", err)
	}
	return command.OK(map[string]any{"userId": req.UserID, "blocked": on})
}

type muteReq struct {
	RoomID string `json:"roomId"`
	Muted  *bool  `json:"muted"`
}

func (r *muteReq) check() error {
	if err := CheckID("roomId", r.RoomID); err != nil {
		return err
	}
	if r.Muted == nil {
		return command.BadRequest("muted is required")
	}
	return nil
}

func (c *Core) muteRoom(ctx context.Context, cmd *edgev1.Command, req *muteReq) (*edgev1.Reply, error) {
	me := cmd.GetIdentity().GetUserId()
	if _, _, err := c.member(ctx, req.RoomID, me); err != nil {
		return nil, err
	}
	err := c.store.SetMuted(ctx, req.RoomID, me, *req.Muted)
	if errors.Is(err, store.ErrNotFound) {
		return nil, command.Forbidden("not a member of room %q", req.RoomID)
	} else if err != nil {
		return nil, fmt.Errorf("mute: %w", err)
	}
	return command.OK(map[string]any{"roomId": req.RoomID, "muted": *req.Muted})
}

// sendPolicy applies the policy to a send by id in st: school hours, blocks and
// the direct pair in direct rooms. It returns the live policy for the content rules.
func (c *Core) sendPolicy(ctx context.Context, id *edgev1.Identity, roomType string, others []string) (*livePolicy, error) {
	lp, err := c.policy(ctx, DefaultSchool)
	if err != nil {
		return nil, err
	}
	if reason := lp.outsideHours(id.GetRoles(), c.now()); reason != "" {
		return nil, command.Forbidden("%s", reason)
	}
	if roomType == store.TypeDirect {
		for _, o := range others {
			if err := c.forbidDirect(ctx, lp, id.GetUserId(), id.GetRoles(), o); err != nil {
				return nil, err
			}
		}
	}
	return lp, nil
}

// directPeers returns the other full members (not readonly second adults) of a direct room.
func directPeers(st interface {
	Role(string) (string, bool)
}, members []string, me string) []string {
	var out []string
	for _, u := range members {
		if r, _ := st.Role(u); u != me && r != store.RoleReadonly {
			out = append(out, u)
		}
	}
	return out
}

// HeldMessage is a held message as the review queue and the sender see it.
type HeldMessage struct {
	HeldID      string `json:"heldId"`
	RoomID      string `json:"roomId"`
	SenderID    string `json:"senderId"`
	ClientMsgID string `json:"clientMsgId"`
	Status      string `json:"status"`
	RuleID      string `json:"ruleId"`
}

func heldView(h *store.Held) HeldMessage {
	return HeldMessage{HeldID: h.ID, RoomID: h.RoomID, SenderID: h.SenderID, ClientMsgID: h.ClientMsgID, Status: h.Status, RuleID: h.RuleID}
}

// contentRules applies the rules to msg: reject returns bad_request with the
// rule's public reason; hold stores msg aside and returns its pending reply;
// flag returns the match (the caller raises a report after storing).
func (c *Core) contentRules(ctx context.Context, lp *livePolicy, msg store.Message, roles []string) (*edgev1.Reply, *rules.Match, error) {
	action, m := rules.Strongest(lp.rules.Match(msg.Content, roles))
	switch action {
	case rules.ActionReject:
		return nil, nil, command.BadRequest("%s", m.PublicReason)
	case rules.ActionHold:
		h, err := c.guard.Hold(ctx, store.Held{ID: msg.ID, School: DefaultSchool, RoomID: msg.RoomID, SenderID: msg.SenderID,
			SenderName: msg.SenderName, Type: msg.Type, Content: msg.Content, ClientMsgID: msg.ClientMsgID, RuleID: m.RuleID,
			Status: "held", CreatedAt: store.Now()})
		if err != nil {
			return nil, nil, fmt.Errorf("hold: %w", err)
		}
		if h.Status == "held" {
			_ = c.raiseReport(ctx, store.Report{ID: "rep_held_" + h.ID, School: DefaultSchool, RoomID: h.RoomID, MessageID: h.ID,
				ReporterID: "rule:" + m.RuleID, Reason: m.Category, Status: "open", CreatedAt: store.Now()})
		}
		r, err := command.OK(map[string]any{"held": heldView(h)})
		return r, nil, err
	case rules.ActionFlag:
		return nil, &m, nil
	}
	return nil, nil, nil
}

// ReleaseHeld delivers held message id to its room (a new seq, now) or, when
// release is false, rejects it; the sender is told either way and the decision
// is audited. Only the school's safeguarding leads (or a backend caller, by
// actor "service:...") decide.
func (c *Core) ReleaseHeld(ctx context.Context, id, actor string, release bool) (HeldMessage, error) {
	h, err := c.guard.HeldMessage(ctx, id)
	if err != nil {
		return HeldMessage{}, fmt.Errorf("held message: %w", err)
	}
	if h.Status != "held" {
		return heldView(h), fmt.Errorf("%w: already %s", ErrDecided, h.Status)
	}
	status := "rejected"
	if release {
		status = "released"
		st, err := c.room(ctx, h.RoomID)
		if err != nil {
			return HeldMessage{}, err
		}
		// Appended first: the message id and clientMsgId make a repeated release
		// store nothing twice.
		m, dup, err := c.seq.AppendAfter(ctx, store.Message{ID: h.ID, RoomID: h.RoomID, SenderID: h.SenderID, SenderName: h.SenderName,
			Type: h.Type, Content: h.Content, ClientMsgID: h.ClientMsgID}, st.Room.LastSeq)
		if err != nil {
			return HeldMessage{}, fmt.Errorf("release: %w", err)
		}
		// A released message is created now, for webhooks and pushes alike.
		if err := c.publishHook(ctx, webhook.MessageCreated, m, m.CreatedAt); err != nil {
			return HeldMessage{}, fmt.Errorf("release: %w", err)
		}
		if !dup {
			c.requestPush(st, &m)
		}
	}
	if err := c.guard.DecideHeld(ctx, id, status, actor); err != nil && !errors.Is(err, store.ErrNotFound) {
		return HeldMessage{}, fmt.Errorf("decide held: %w", err)
	}
	h.Status, h.DecidedBy = status, actor
	c.audit(ctx, audit.Entry{Kind: "message." + status, Actor: actor, Target: id,
		Detail: map[string]string{"roomId": h.RoomID, "senderId": h.SenderID, "ruleId": h.RuleID}})
	c.publishUser(h.SenderID, &edgev1.Outbound{Event: "held-message-resolved", Data: mustJSON(heldView(h))})
	return heldView(h), nil
}

// ErrDecided means a held message was already released or rejected.
var ErrDecided = errors.New("held message already decided")

// IsLead reports whether userID is a safeguarding lead of school.
func (c *Core) IsLead(ctx context.Context, school, userID string) (bool, error) {
	lp, err := c.policy(ctx, school)
	if err != nil {
		return false, err
	}
	return slices.Contains(lp.Leads, userID), nil
}

// Reports returns the review queue (status "open", "closed" or "" for all).
func (c *Core) Reports(ctx context.Context, school, status string, limit int) ([]store.Report, error) {
	return c.guard.Reports(ctx, school, status, limit)
}

// CloseReport closes a report of the review queue.
func (c *Core) CloseReport(ctx context.Context, school, id, actor string) error {
	if err := c.guard.CloseReport(ctx, school, id); err != nil {
		return fmt.Errorf("close report: %w", err)
	}
	c.audit(ctx, audit.Entry{Kind: "report.closed", Actor: actor, Target: id})
	return nil
}

// HeldMessages lists the messages still held.
func (c *Core) HeldMessages(ctx context.Context, school string, limit int) ([]store.Held, error) {
	return c.guard.HeldMessages(ctx, school, limit)
}

// SetBlock blocks (or unblocks) for an admin through gRPC.
func (c *Core) SetBlock(ctx context.Context, blocker, blocked string, on bool) error {
	return c.guard.SetBlock(ctx, blocker, blocked, on, store.Now())
}

type releaseReq struct {
	HeldID  string `json:"heldId"`
	Release *bool  `json:"release"`
}

func (r *releaseReq) check() error {
	if err := CheckID("heldId", r.HeldID); err != nil {
		return err
	}
	if r.Release == nil {
		return command.BadRequest("release is required (true to deliver, false to reject)")
	}
	return nil
}

// releaseHeld is the client event of a safeguarding lead deciding a held message.
func (c *Core) releaseHeld(ctx context.Context, cmd *edgev1.Command, req *releaseReq) (*edgev1.Reply, error) {
	me := cmd.GetIdentity().GetUserId()
	lead, err := c.IsLead(ctx, DefaultSchool, me)
	if err != nil {
		return nil, err
	}
	if !lead {
		return nil, command.Forbidden("only the school's safeguarding leads release held messages")
	}
	h, err := c.ReleaseHeld(ctx, req.HeldID, me, *req.Release)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, command.NotFound("held message %q not found", req.HeldID)
	case errors.Is(err, ErrDecided): // decided before: the current state, like a repeated call
		return command.OK(map[string]any{"held": h})
	case err != nil:
		return nil, err
	}
	return command.OK(map[string]any{"held": h})
}
