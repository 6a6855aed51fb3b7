package reach

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// Client events (docs/protocol.md "Preferences").
const (
	EventGetPreferences = "get-preferences"
	EventSetPreferences = "set-preferences"
)

// Service serves preferences to users (client events) and to the school (gRPC).
type Service struct {
	st *Store
	// OnChange, when set, is called after a user's preferences or contact changed
	// (the digest scheduler enrols the user). Errors are the hook's to log.
	OnChange func(ctx context.Context, userID string)
}

// NewService returns a service on st.
func NewService(st *Store) *Service { return &Service{st: st} }

func (s *Service) changed(ctx context.Context, userID string) {
	if s.OnChange != nil {
		s.OnChange(ctx, userID)
	}
}

// RegisterCommands registers the client events on srv. Both act on the
// authenticated user of the command only: there is no user id in the data.
func (s *Service) RegisterCommands(srv *command.Server) {
	srv.Handle(EventGetPreferences, s.handleGet)
	srv.Handle(EventSetPreferences, s.handleSet)
}

// WirePrefs is the preferences object of docs/protocol.md "Preferences".
type WirePrefs struct {
	TimeZone      string      `json:"timeZone"`
	QuietHours    *QuietHours `json:"quietHours"`
	QuietHoursOff bool        `json:"quietHoursOff"`
	Settings      []Setting   `json:"settings"`
	Digest        *bool       `json:"digest"`
}

// View is what get-preferences and set-preferences answer.
type View struct {
	Preferences WirePrefs `json:"preferences"`
	Effective   []Setting `json:"effective"`
	Digest      bool      `json:"digest"`
	HasEmail    bool      `json:"hasEmail"`
	Channels    []string  `json:"channels"`
	Categories  []string  `json:"categories"`
}

// ViewOf builds the view of a user's document and their school.
func ViewOf(u *User, sc *School) View {
	p := u.Prefs
	if p.Settings == nil {
		p.Settings = []Setting{}
	}
	return View{
		Preferences: WirePrefs(p),
		Effective:   EffectiveAll(&u.Prefs, sc), Digest: DigestEnabled(&u.Prefs, &u.Contact, sc), HasEmail: u.Contact.Email != "",
		Channels: Channels, Categories: Categories,
	}
}

func commandErr(op string, err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", op, command.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Load returns a user's document and school.
func (s *Service) Load(ctx context.Context, userID string) (*User, *School, error) {
	u, err := s.st.User(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	sc, err := s.st.School(ctx, u.Contact.SchoolID)
	if err != nil {
		return nil, nil, err
	}
	return u, sc, nil
}

func (s *Service) handleGet(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req struct{}
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	user := cmd.GetIdentity().GetUserId()
	if !ValidID(user) {
		return nil, command.BadRequest("invalid user id")
	}
	u, sc, err := s.Load(ctx, user)
	if err != nil {
		return nil, commandErr("get preferences", err)
	}
	return command.OK(ViewOf(u, sc))
}

// setRequest is set-preferences' data: fields present change, fields absent stay;
// settings entries replace the entries of the same channel and category.
type setRequest struct {
	TimeZone      *string         `json:"timeZone"`
	QuietHours    json.RawMessage `json:"quietHours"`
	QuietHoursOff *bool           `json:"quietHoursOff"`
	Settings      []Setting       `json:"settings"`
	Digest        json.RawMessage `json:"digest"`
}

func isNull(r json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(r), []byte("null")) }

// apply changes p by req; it returns a message for the client on invalid input.
func (r *setRequest) apply(p *Prefs) error {
	if r.TimeZone != nil {
		p.TimeZone = *r.TimeZone
	}
	if r.QuietHours != nil {
		if isNull(r.QuietHours) {
			p.QuietHours = nil
		} else {
			var q QuietHours
			dec := json.NewDecoder(bytes.NewReader(r.QuietHours))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&q); err != nil {
				return errors.New(`quietHours: want {"start":"HH:MM","end":"HH:MM"} or null`)
			}
			p.QuietHours = &q
		}
	}
	if r.QuietHoursOff != nil {
		p.QuietHoursOff = *r.QuietHoursOff
	}
	if len(r.Settings) > MaxSettings {
		return fmt.Errorf("at most %d settings", MaxSettings)
	}
	for _, st := range r.Settings {
		replaced := false
		for i := range p.Settings {
			if p.Settings[i].Channel == st.Channel && p.Settings[i].Category == st.Category {
				p.Settings[i].Enabled, replaced = st.Enabled, true
			}
		}
		if !replaced {
			p.Settings = append(p.Settings, st)
		}
	}
	if r.Digest != nil {
		if isNull(r.Digest) {
			p.Digest = nil
		} else {
			var b bool
			if err := json.Unmarshal(r.Digest, &b); err != nil {
				return errors.New("digest: want true, false or null")
			}
			p.Digest = &b
		}
	}
	return ValidatePrefs(p)
}

func (s *Service) handleSet(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
	var req setRequest
	if err := command.Decode(cmd, &req); err != nil {
		return nil, err
	}
	user := cmd.GetIdentity().GetUserId()
	if !ValidID(user) {
		return nil, command.BadRequest("invalid user id")
	}
	u, sc, err := s.Load(ctx, user)
	if err != nil {
		return nil, commandErr("set preferences", err)
	}
	if err := req.apply(&u.Prefs); err != nil {
		return nil, command.BadRequest("%s", err)
	}
	if err := s.st.SetPrefs(ctx, user, u.Prefs); err != nil {
		return nil, commandErr("set preferences", err)
	}
	s.changed(ctx, user)
	return command.OK(ViewOf(u, sc))
}
