package reach

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/talim/realtime/pkg/grpcx"
	notificationv1 "github.com/talim/realtime/proto/talim/notification/v1"
)

// API implements ReachService. Until SetService is called every call returns
// Unavailable (the service registers gRPC before it connects).
type API struct {
	notificationv1.UnimplementedReachServiceServer
	svc atomic.Pointer[Service]
	log *slog.Logger
}

var _ notificationv1.ReachServiceServer = (*API)(nil)

// NewAPI returns an API that is not serving yet.
func NewAPI(log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{log: log}
}

// SetService makes the API serve with s (nil: stop serving).
func (a *API) SetService(s *Service) { a.svc.Store(s) }

func (a *API) get() (*Service, error) {
	s := a.svc.Load()
	if s == nil {
		return nil, status.Error(codes.Unavailable, "notification service is not connected yet")
	}
	return s, nil
}

func (a *API) grpcErr(method string, err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, ErrUnavailable):
		a.log.Warn("grpc call failed: store unavailable", "method", method, "err", err)
		return status.Error(codes.Unavailable, "the store is unavailable; retry later")
	}
	a.log.Error("grpc call failed", "method", method, "err", err)
	return status.Error(codes.Internal, "internal error")
}

func invalid(field string, err error) error {
	var v grpcx.FieldViolations
	v.Add(field, "%v", err)
	return v.Err()
}

func checkID(field, id string) error {
	if !ValidID(id) {
		var v grpcx.FieldViolations
		v.Add(field, "1..%d characters of A-Z a-z 0-9 _ - : @ .", MaxIDLen)
		return v.Err()
	}
	return nil
}

func settingsFromProto(in []*notificationv1.ChannelSetting) []Setting {
	out := make([]Setting, 0, len(in))
	for _, s := range in {
		out = append(out, Setting{Channel: s.GetChannel(), Category: s.GetCategory(), Enabled: s.GetEnabled()})
	}
	return out
}

func settingsToProto(in []Setting) []*notificationv1.ChannelSetting {
	out := make([]*notificationv1.ChannelSetting, 0, len(in))
	for _, s := range in {
		out = append(out, &notificationv1.ChannelSetting{Channel: s.Channel, Category: s.Category, Enabled: s.Enabled})
	}
	return out
}

func quietFromProto(q *notificationv1.QuietHours) *QuietHours {
	if q == nil {
		return nil
	}
	return &QuietHours{Start: q.GetStart(), End: q.GetEnd()}
}

func quietToProto(q *QuietHours) *notificationv1.QuietHours {
	if q == nil {
		return nil
	}
	return &notificationv1.QuietHours{Start: q.Start, End: q.End}
}

// SchoolFromProto converts a school message.
func SchoolFromProto(p *notificationv1.School) *School {
	s := &School{ID: p.GetSchoolId(), TimeZone: p.GetTimeZone(), DefaultQuietHours: quietFromProto(p.GetDefaultQuietHours()),
		Defaults: settingsFromProto(p.GetDefaults()), DigestEveryHours: int(p.GetDigestEveryHours()),
		DigestGuardiansByDefault: p.GetDigestGuardiansByDefault()}
	for _, t := range p.GetTerms() {
		s.Terms = append(s.Terms, Term{Name: t.GetName(), Start: t.GetStart(), End: t.GetEnd()})
	}
	for _, h := range p.GetHolidays() {
		s.Holidays = append(s.Holidays, Holiday{Name: h.GetName(), Start: h.GetStart(), End: h.GetEnd()})
	}
	return s
}

// SchoolToProto converts a school.
func SchoolToProto(s *School) *notificationv1.School {
	p := &notificationv1.School{SchoolId: s.ID, TimeZone: s.TimeZone, DefaultQuietHours: quietToProto(s.DefaultQuietHours),
		Defaults: settingsToProto(s.Defaults), DigestEveryHours: int32(s.DigestEveryHours), //nolint:gosec // validated <= 168
		DigestGuardiansByDefault: s.DigestGuardiansByDefault}
	for _, t := range s.Terms {
		p.Terms = append(p.Terms, &notificationv1.Term{Name: t.Name, Start: t.Start, End: t.End})
	}
	for _, h := range s.Holidays {
		p.Holidays = append(p.Holidays, &notificationv1.Holiday{Name: h.Name, Start: h.Start, End: h.End})
	}
	return p
}

func prefsToProto(p *Prefs) *notificationv1.UserPreferences {
	return &notificationv1.UserPreferences{TimeZone: p.TimeZone, QuietHours: quietToProto(p.QuietHours), QuietHoursOff: p.QuietHoursOff,
		Settings: settingsToProto(p.Settings), Digest: p.Digest}
}

// GetSchool implements ReachService.
func (a *API) GetSchool(ctx context.Context, req *notificationv1.GetSchoolRequest) (*notificationv1.GetSchoolResponse, error) {
	s, err := a.get()
	if err != nil {
		return nil, err
	}
	if err := checkID("school_id", req.GetSchoolId()); err != nil {
		return nil, err
	}
	sc, err := s.st.School(ctx, req.GetSchoolId())
	if err != nil {
		return nil, a.grpcErr("GetSchool", err)
	}
	return &notificationv1.GetSchoolResponse{School: SchoolToProto(sc)}, nil
}

// SetSchool implements ReachService.
func (a *API) SetSchool(ctx context.Context, req *notificationv1.SetSchoolRequest) (*notificationv1.SetSchoolResponse, error) {
	s, err := a.get()
	if err != nil {
		return nil, err
	}
	sc := SchoolFromProto(req.GetSchool())
	if err := ValidateSchool(sc); err != nil {
		return nil, invalid("school", err)
	}
	if err := s.st.SetSchool(ctx, sc); err != nil {
		return nil, a.grpcErr("SetSchool", err)
	}
	return &notificationv1.SetSchoolResponse{School: SchoolToProto(sc)}, nil
}

// GetUserPreferences implements ReachService.
func (a *API) GetUserPreferences(ctx context.Context, req *notificationv1.GetUserPreferencesRequest) (*notificationv1.GetUserPreferencesResponse, error) {
	s, err := a.get()
	if err != nil {
		return nil, err
	}
	if err := checkID("user_id", req.GetUserId()); err != nil {
		return nil, err
	}
	u, sc, err := s.Load(ctx, req.GetUserId())
	if err != nil {
		return nil, a.grpcErr("GetUserPreferences", err)
	}
	return &notificationv1.GetUserPreferencesResponse{Preferences: prefsToProto(&u.Prefs), Effective: settingsToProto(EffectiveAll(&u.Prefs, sc)),
		DigestEffective: DigestEnabled(&u.Prefs, &u.Contact, sc), SchoolId: sc.ID}, nil
}

// SetUserPreferences implements ReachService: the given preferences replace the
// user's (read, change and write back to edit one field).
func (a *API) SetUserPreferences(ctx context.Context, req *notificationv1.SetUserPreferencesRequest) (*notificationv1.SetUserPreferencesResponse, error) {
	s, err := a.get()
	if err != nil {
		return nil, err
	}
	if err := checkID("user_id", req.GetUserId()); err != nil {
		return nil, err
	}
	in := req.GetPreferences()
	p := Prefs{TimeZone: in.GetTimeZone(), QuietHours: quietFromProto(in.GetQuietHours()), QuietHoursOff: in.GetQuietHoursOff(),
		Settings: settingsFromProto(in.GetSettings())}
	if in != nil && in.Digest != nil {
		d := in.GetDigest()
		p.Digest = &d
	}
	if err := ValidatePrefs(&p); err != nil {
		return nil, invalid("preferences", err)
	}
	if err := s.st.SetPrefs(ctx, req.GetUserId(), p); err != nil {
		return nil, a.grpcErr("SetUserPreferences", err)
	}
	s.changed(ctx, req.GetUserId())
	return &notificationv1.SetUserPreferencesResponse{Preferences: prefsToProto(&p)}, nil
}

// SetContact implements ReachService.
func (a *API) SetContact(ctx context.Context, req *notificationv1.SetContactRequest) (*notificationv1.SetContactResponse, error) {
	s, err := a.get()
	if err != nil {
		return nil, err
	}
	c := req.GetContact()
	var v grpcx.FieldViolations
	if !ValidID(c.GetUserId()) {
		v.Add("contact.user_id", "1..%d characters of A-Z a-z 0-9 _ - : @ .", MaxIDLen)
	}
	if c.GetSchoolId() != "" && !ValidID(c.GetSchoolId()) {
		v.Add("contact.school_id", "1..%d characters of A-Z a-z 0-9 _ - : @ .", MaxIDLen)
	}
	if c.GetEmail() != "" && !ValidEmail(c.GetEmail()) {
		v.Add("contact.email", "a plain address such as name@school.example (no display name)")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if err := s.st.SetContact(ctx, c.GetUserId(), Contact{SchoolID: c.GetSchoolId(), Email: c.GetEmail(), Guardian: c.GetGuardian()}); err != nil {
		return nil, a.grpcErr("SetContact", err)
	}
	s.changed(ctx, c.GetUserId())
	return &notificationv1.SetContactResponse{Contact: c}, nil
}

// GetContact implements ReachService.
func (a *API) GetContact(ctx context.Context, req *notificationv1.GetContactRequest) (*notificationv1.GetContactResponse, error) {
	s, err := a.get()
	if err != nil {
		return nil, err
	}
	if err := checkID("user_id", req.GetUserId()); err != nil {
		return nil, err
	}
	u, err := s.st.User(ctx, req.GetUserId())
	if err != nil {
		return nil, a.grpcErr("GetContact", err)
	}
	return &notificationv1.GetContactResponse{Contact: &notificationv1.Contact{UserId: u.ID, SchoolId: u.Contact.SchoolID,
		Email: u.Contact.Email, Guardian: u.Contact.Guardian}}, nil
}
