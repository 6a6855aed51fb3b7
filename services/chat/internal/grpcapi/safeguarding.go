package grpcapi

import (
	"context"
	"errors"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/talim/realtime/pkg/grpcx"
	sgv1 "github.com/talim/realtime/proto/talim/safeguarding/v1"
	"github.com/talim/realtime/services/chat/internal/core"
	"github.com/talim/realtime/services/chat/internal/safeguard/rules"
	"github.com/talim/realtime/services/chat/internal/store"
)

// Safeguarding implements SafeguardingService (safeguarding.proto) on the core
// of srv. Register it next to srv.
type Safeguarding struct {
	sgv1.UnimplementedSafeguardingServiceServer
	Srv *Server
}

var _ sgv1.SafeguardingServiceServer = (*Safeguarding)(nil)

func sgStatus(err error) error {
	switch {
	case errors.Is(err, core.ErrVersionConflict):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, core.ErrInvalidPolicy):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, "not found")
	case errors.Is(err, core.ErrDecided):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return toStatus(err)
}

func school(s string, v *grpcx.FieldViolations, field string) string {
	if s == "" {
		return core.DefaultSchool
	}
	if !core.ValidID(s) {
		v.Add(field, "must be 1..128 characters of [A-Za-z0-9_-:@.]")
	}
	return s
}

func checkActor(v *grpcx.FieldViolations, actor string) {
	if !core.ValidID(actor) {
		v.Add("actor", "the acting user id is required (1..128 characters of [A-Za-z0-9_-:@.])")
	}
}

var secondAdults = map[sgv1.SecondAdult]string{
	sgv1.SecondAdult_SECOND_ADULT_UNSPECIFIED: core.SecondAdultOff, sgv1.SecondAdult_SECOND_ADULT_OFF: core.SecondAdultOff,
	sgv1.SecondAdult_SECOND_ADULT_INCLUDE: core.SecondAdultInclude, sgv1.SecondAdult_SECOND_ADULT_VISIBLE: core.SecondAdultVisible,
}

func policyProto(p store.Policy) *sgv1.Policy {
	out := &sgv1.Policy{School: p.School, Version: p.Version, DirectPairs: p.DirectPairs, SecondAdultIds: p.SecondAdultIDs,
		Leads: p.Leads, UpdatedBy: p.UpdatedBy, SecondAdult: sgv1.SecondAdult_SECOND_ADULT_OFF}
	for k, v := range secondAdults {
		if v == p.SecondAdult && k != sgv1.SecondAdult_SECOND_ADULT_UNSPECIFIED && v != "" {
			out.SecondAdult = k
		}
	}
	if !p.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(p.UpdatedAt)
	}
	if h := p.Hours; h != nil {
		out.Hours = &sgv1.SchoolHours{TimeZone: h.TimeZone, Start: h.Start, End: h.End}
		for _, d := range h.Days {
			out.Hours.Days = append(out.Hours.Days, int32(d))
		}
	}
	for _, r := range p.Rules {
		out.Rules = append(out.Rules, &sgv1.ContentRule{Id: r.ID, Category: r.Category, Action: r.Action, Words: r.Words,
			Patterns: r.Patterns, PublicReason: r.PublicReason, SenderRoles: r.SenderRoles})
	}
	return out
}

func rulesFrom(in []*sgv1.ContentRule) []rules.Rule {
	out := make([]rules.Rule, 0, len(in))
	for _, r := range in {
		out = append(out, rules.Rule{ID: r.GetId(), Category: r.GetCategory(), Action: r.GetAction(), Words: r.GetWords(),
			Patterns: r.GetPatterns(), PublicReason: r.GetPublicReason(), SenderRoles: r.GetSenderRoles()})
	}
	return out
}

// GetPolicy returns the school's messaging policy and its version.
func (s *Safeguarding) GetPolicy(ctx context.Context, req *sgv1.GetPolicyRequest) (*sgv1.GetPolicyResponse, error) {
	c, err := s.Srv.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	sc := school(req.GetSchool(), &v, "school")
	if err := v.Err(); err != nil {
		return nil, err
	}
	p, err := c.Policy(ctx, sc)
	if err != nil {
		return nil, sgStatus(err)
	}
	return &sgv1.GetPolicyResponse{Policy: policyProto(p)}, nil
}

// SetPolicy replaces the school's policy when the expected version matches; audited.
func (s *Safeguarding) SetPolicy(ctx context.Context, req *sgv1.SetPolicyRequest) (*sgv1.SetPolicyResponse, error) {
	c, err := s.Srv.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	in := req.GetPolicy()
	if in == nil {
		v.Add("policy", "required")
	}
	sc := school(in.GetSchool(), &v, "policy.school")
	checkActor(&v, req.GetActor())
	if err := v.Err(); err != nil {
		return nil, err
	}
	p := store.Policy{School: sc, DirectPairs: in.GetDirectPairs(), SecondAdult: secondAdults[in.GetSecondAdult()],
		SecondAdultIDs: in.GetSecondAdultIds(), Leads: in.GetLeads()}
	if h := in.GetHours(); h != nil {
		p.Hours = &store.SchoolHours{TimeZone: h.GetTimeZone(), Start: h.GetStart(), End: h.GetEnd()}
		for _, d := range h.GetDays() {
			p.Hours.Days = append(p.Hours.Days, int(d))
		}
	}
	saved, err := c.SetPolicy(ctx, p, req.GetExpectedVersion(), req.GetActor())
	if err != nil {
		return nil, sgStatus(err)
	}
	return &sgv1.SetPolicyResponse{Policy: policyProto(saved)}, nil
}

// SetContentRules replaces the school's content rules (a policy change; audited).
func (s *Safeguarding) SetContentRules(ctx context.Context, req *sgv1.SetContentRulesRequest) (*sgv1.SetContentRulesResponse, error) {
	c, err := s.Srv.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	sc := school(req.GetSchool(), &v, "school")
	checkActor(&v, req.GetActor())
	rs := rulesFrom(req.GetRules())
	if _, err := rules.Compile(rs); err != nil {
		v.Add("rules", "%v", err)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	saved, err := c.SetRules(ctx, sc, rs, req.GetExpectedVersion(), req.GetActor())
	if err != nil {
		return nil, sgStatus(err)
	}
	return &sgv1.SetContentRulesResponse{Policy: policyProto(saved)}, nil
}

func limit(v *grpcx.FieldViolations, n int32) int {
	switch {
	case n == 0:
		return 100
	case n < 0 || n > 500:
		v.Add("limit", "must be 1..500")
	}
	return int(n)
}

// ListReports lists the review queue: reports raised by users and by content rules.
func (s *Safeguarding) ListReports(ctx context.Context, req *sgv1.ListReportsRequest) (*sgv1.ListReportsResponse, error) {
	c, err := s.Srv.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	sc := school(req.GetSchool(), &v, "school")
	if st := req.GetStatus(); !slices.Contains([]string{"", "open", "closed"}, st) {
		v.Add("status", "must be open, closed or empty")
	}
	n := limit(&v, req.GetLimit())
	if err := v.Err(); err != nil {
		return nil, err
	}
	rs, err := c.Reports(ctx, sc, req.GetStatus(), n)
	if err != nil {
		return nil, sgStatus(err)
	}
	out := &sgv1.ListReportsResponse{}
	for _, r := range rs {
		out.Reports = append(out.Reports, &sgv1.Report{ReportId: r.ID, RoomId: r.RoomID, MessageId: r.MessageID, ReporterId: r.ReporterID,
			Reason: r.Reason, Text: r.Text, Status: r.Status, CreatedAt: timestamppb.New(r.CreatedAt)})
	}
	return out, nil
}

// CloseReport closes a report in the review queue.
func (s *Safeguarding) CloseReport(ctx context.Context, req *sgv1.CloseReportRequest) (*sgv1.CloseReportResponse, error) {
	c, err := s.Srv.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	sc := school(req.GetSchool(), &v, "school")
	checkRoomID(&v, "report_id", req.GetReportId())
	checkActor(&v, req.GetActor())
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := c.CloseReport(ctx, sc, req.GetReportId(), req.GetActor()); err != nil {
		return nil, sgStatus(err)
	}
	return &sgv1.CloseReportResponse{}, nil
}

func heldProto(h store.Held) *sgv1.HeldMessage {
	return &sgv1.HeldMessage{HeldId: h.ID, RoomId: h.RoomID, SenderId: h.SenderID, Content: h.Content, RuleId: h.RuleID,
		Status: h.Status, CreatedAt: timestamppb.New(h.CreatedAt)}
}

// ListHeldMessages lists messages a content rule holds for review.
func (s *Safeguarding) ListHeldMessages(ctx context.Context, req *sgv1.ListHeldMessagesRequest) (*sgv1.ListHeldMessagesResponse, error) {
	c, err := s.Srv.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	sc := school(req.GetSchool(), &v, "school")
	n := limit(&v, req.GetLimit())
	if err := v.Err(); err != nil {
		return nil, err
	}
	hs, err := c.HeldMessages(ctx, sc, n)
	if err != nil {
		return nil, sgStatus(err)
	}
	out := &sgv1.ListHeldMessagesResponse{}
	for _, h := range hs {
		out.Messages = append(out.Messages, heldProto(h))
	}
	return out, nil
}

// DecideHeldMessage releases or rejects a held message; audited.
func (s *Safeguarding) DecideHeldMessage(ctx context.Context, req *sgv1.DecideHeldMessageRequest) (*sgv1.DecideHeldMessageResponse, error) {
	c, err := s.Srv.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	checkRoomID(&v, "held_id", req.GetHeldId())
	checkActor(&v, req.GetActor())
	if err := v.Err(); err != nil {
		return nil, err
	}
	lead, err := c.IsLead(ctx, core.DefaultSchool, req.GetActor())
	if err != nil {
		return nil, sgStatus(err)
	}
	if !lead {
		return nil, status.Error(codes.PermissionDenied, "actor is not one of the school's safeguarding leads")
	}
	h, err := c.ReleaseHeld(ctx, req.GetHeldId(), req.GetActor(), req.GetRelease())
	if err != nil {
		return nil, sgStatus(err)
	}
	return &sgv1.DecideHeldMessageResponse{Message: &sgv1.HeldMessage{HeldId: h.HeldID, RoomId: h.RoomID, SenderId: h.SenderID,
		RuleId: h.RuleID, Status: h.Status}}, nil
}

// SetBlock blocks or unblocks a user for another (an administrator's correction).
func (s *Safeguarding) SetBlock(ctx context.Context, req *sgv1.SetBlockRequest) (*sgv1.SetBlockResponse, error) {
	c, err := s.Srv.get()
	if err != nil {
		return nil, err
	}
	var v grpcx.FieldViolations
	checkRoomID(&v, "blocker_id", req.GetBlockerId())
	checkRoomID(&v, "blocked_id", req.GetBlockedId())
	checkActor(&v, req.GetActor())
	if req.GetBlockerId() == req.GetBlockedId() {
		v.Add("blocked_id", "must differ from blocker_id")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := c.SetBlock(ctx, req.GetBlockerId(), req.GetBlockedId(), req.GetBlocked()); err != nil {
		return nil, sgStatus(err)
	}
	return &sgv1.SetBlockResponse{}, nil
}
