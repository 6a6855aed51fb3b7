package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/subject"
	"github.com/talim/realtime/services/chat/internal/audit"
	"github.com/talim/realtime/services/chat/internal/safeguard/rules"
	"github.com/talim/realtime/services/chat/internal/store"
)

// DefaultSchool is the policy key of a deployment with one school (tokens
// carry no school claim; pkg/auth Claims).
const DefaultSchool = "default"

// Token roles the policy knows (pkg/auth Claims.Roles; services/talim seed).
const (
	TokenStudent      = "student"
	TokenTeacher      = "teacher"
	TokenGuardian     = "guardian"
	TokenSafeguarding = "safeguarding"
	TokenAdmin        = "admin"
)

// Second-adult modes of a teacher–student direct room.
const (
	SecondAdultOff     = ""
	SecondAdultInclude = "include"
	SecondAdultVisible = "visible"
)

// DefaultPolicy is a school's policy until one is set: student↔student direct
// rooms off; teacher↔student, guardian↔teacher and teacher↔teacher on; admins
// and safeguarding leads may open a direct room with anyone. No school hours.
func DefaultPolicy(school string) store.Policy {
	return store.Policy{School: school,
		DirectPairs: []string{"teacher:student", "guardian:teacher", "teacher:teacher", "admin:*", "safeguarding:*"},
		Rules:       rules.Defaults()}
}

// livePolicy is a policy ready to apply.
type livePolicy struct {
	store.Policy
	rules      *rules.Matcher
	loc        *time.Location
	start, end int // minutes after midnight
	days       []time.Weekday
}

// ErrInvalidPolicy is returned by SetPolicy for a policy that cannot be applied.
var ErrInvalidPolicy = errors.New("invalid policy")

// ErrVersionConflict means the policy changed since the version the caller gave.
var ErrVersionConflict = store.ErrVersionConflict

func compilePolicy(p store.Policy) (*livePolicy, error) {
	lp := &livePolicy{Policy: p}
	for _, pair := range p.DirectPairs {
		a, b, ok := strings.Cut(pair, ":")
		if !ok || !roleName(a) || (!roleName(b) && b != "*") {
			return nil, fmt.Errorf("%w: direct pair %q must be role:role (or role:*)", ErrInvalidPolicy, pair)
		}
	}
	switch p.SecondAdult {
	case SecondAdultOff, SecondAdultInclude, SecondAdultVisible:
	default:
		return nil, fmt.Errorf("%w: secondAdult must be \"\", include or visible", ErrInvalidPolicy)
	}
	for _, id := range slices.Concat(p.Leads, p.SecondAdultIDs) {
		if !ValidID(id) {
			return nil, fmt.Errorf("%w: user id %q", ErrInvalidPolicy, id)
		}
	}
	if p.SecondAdult == SecondAdultInclude && len(p.SecondAdultIDs) == 0 && len(p.Leads) == 0 {
		return nil, fmt.Errorf("%w: secondAdult include needs secondAdultIds or leads", ErrInvalidPolicy)
	}
	if h := p.Hours; h != nil {
		loc, err := time.LoadLocation(h.TimeZone)
		if err != nil || h.TimeZone == "" {
			return nil, fmt.Errorf("%w: time zone %q", ErrInvalidPolicy, h.TimeZone)
		}
		lp.loc = loc
		if lp.start, err = clock(h.Start); err == nil {
			lp.end, err = clock(h.End)
		}
		if err != nil || lp.start >= lp.end {
			return nil, fmt.Errorf("%w: hours must be HH:MM with start before end", ErrInvalidPolicy)
		}
		for _, d := range h.Days {
			if d < 0 || d > 6 {
				return nil, fmt.Errorf("%w: days are 0 (Sunday) to 6", ErrInvalidPolicy)
			}
			lp.days = append(lp.days, time.Weekday(d))
		}
		if len(lp.days) == 0 {
			lp.days = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
		}
	}
	m, err := rules.Compile(p.Rules)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	lp.rules = m
	return lp, nil
}

func roleName(s string) bool {
	return s != "" && len(s) <= 32 && ValidID(s) && !strings.ContainsAny(s, ":")
}

func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// directAllowed reports whether users with roles a and b may share a direct room.
func (lp *livePolicy) directAllowed(a, b []string) bool {
	for _, pair := range lp.DirectPairs {
		x, y, _ := strings.Cut(pair, ":")
		for _, ra := range a {
			for _, rb := range b {
				if (ra == x && (rb == y || y == "*")) || (rb == x && (ra == y || y == "*")) {
					return true
				}
			}
		}
	}
	return false
}

// outsideHours returns a reason the client can show when a pupil may not send now.
func (lp *livePolicy) outsideHours(roles []string, now time.Time) string {
	if lp.Hours == nil || !slices.Contains(roles, TokenStudent) {
		return ""
	}
	t := now.In(lp.loc)
	min := t.Hour()*60 + t.Minute()
	if slices.Contains(lp.days, t.Weekday()) && min >= lp.start && min < lp.end {
		return ""
	}
	return fmt.Sprintf("outside school hours: pupils can send messages %s to %s (%s)", lp.Hours.Start, lp.Hours.End, lp.Hours.TimeZone)
}

// policies caches each school's policy; a notice on subject.ChatPolicyChanged
// drops it on every instance.
type policies struct {
	mu     sync.Mutex
	bySchl map[string]*livePolicy
}

// policy returns school's live policy (loaded on first use after a change).
func (c *Core) policy(ctx context.Context, school string) (*livePolicy, error) {
	c.pol.mu.Lock()
	lp := c.pol.bySchl[school]
	c.pol.mu.Unlock()
	if lp != nil {
		return lp, nil
	}
	p, err := c.guard.Policy(ctx, school)
	if errors.Is(err, store.ErrNotFound) {
		d := DefaultPolicy(school)
		p, err = &d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	if lp, err = compilePolicy(*p); err != nil {
		return nil, fmt.Errorf("stored policy of %s: %w", school, err)
	}
	c.pol.mu.Lock()
	c.pol.bySchl[school] = lp
	c.pol.mu.Unlock()
	return lp, nil
}

func (c *Core) subscribePolicy() error {
	sub, err := c.nc.Subscribe(subject.ChatPolicyChanged, func(m *nats.Msg) {
		c.pol.mu.Lock()
		delete(c.pol.bySchl, string(m.Data))
		c.pol.mu.Unlock()
	})
	if err != nil {
		return fmt.Errorf("subscribe policy changes: %w", err)
	}
	c.subs = append(c.subs, sub)
	return nil
}

// Policy returns school's policy (the default when none was set: version 0).
func (c *Core) Policy(ctx context.Context, school string) (store.Policy, error) {
	lp, err := c.policy(ctx, school)
	if err != nil {
		return store.Policy{}, err
	}
	return lp.Policy, nil
}

// SetPolicy stores p as the next version when the current one is expected,
// audits the change and tells every chat instance. A nil rules list keeps the
// current rules (content rules are set through SetRules).
func (c *Core) SetPolicy(ctx context.Context, p store.Policy, expected int64, actor string) (store.Policy, error) {
	return c.updatePolicy(ctx, p.School, expected, actor, "policy.changed", func(cur *store.Policy) {
		p.Rules = cur.Rules
		*cur = p
	})
}

// SetRules replaces the content rules of school's policy (a new policy version).
func (c *Core) SetRules(ctx context.Context, school string, rs []rules.Rule, expected int64, actor string) (store.Policy, error) {
	return c.updatePolicy(ctx, school, expected, actor, "rules.changed", func(cur *store.Policy) { cur.Rules = rs })
}

func (c *Core) updatePolicy(ctx context.Context, school string, expected int64, actor, kind string, change func(*store.Policy)) (store.Policy, error) {
	cur, err := c.Policy(ctx, school)
	if err != nil {
		return store.Policy{}, err
	}
	if cur.Version != expected {
		// Re-read: the cache may be behind the notice of another instance's change.
		if p, err := c.guard.Policy(ctx, school); err == nil {
			cur = *p
		}
		if cur.Version != expected {
			return store.Policy{}, fmt.Errorf("%w: current version is %d", ErrVersionConflict, cur.Version)
		}
	}
	next := cur
	change(&next)
	next.School, next.UpdatedAt, next.UpdatedBy = school, store.Now(), actor
	if _, err := compilePolicy(next); err != nil {
		return store.Policy{}, err
	}
	saved, err := c.guard.SetPolicy(ctx, next, expected)
	if err != nil {
		return store.Policy{}, fmt.Errorf("set policy: %w", err)
	}
	c.audit(ctx, audit.Entry{Kind: kind, Actor: actor, Target: school,
		Detail: map[string]string{"version": fmt.Sprint(saved.Version)}})
	c.pol.mu.Lock()
	delete(c.pol.bySchl, school)
	c.pol.mu.Unlock()
	if err := c.nc.Publish(subject.ChatPolicyChanged, []byte(school)); err != nil {
		c.log.Warn("publish policy change", "school", school, "err", err)
	}
	_ = c.nc.FlushTimeout(2 * time.Second)
	return *saved, nil
}

// audit appends e; a failure is logged loudly (the action already happened).
func (c *Core) audit(ctx context.Context, e audit.Entry) {
	if c.auditLog == nil {
		return
	}
	if _, err := c.auditLog.Append(ctx, e); err != nil {
		c.log.Error("audit append failed", "kind", e.Kind, "target", e.Target, "err", err)
	}
}

// rolesOf returns userID's token roles as chat last saw them, mapped for the
// policy: a user with no roles counts as unclassifiedAs.
func (c *Core) rolesOf(ctx context.Context, userID string) ([]string, error) {
	rs, err := c.guard.Roles(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("roles of %s: %w", userID, err)
	}
	return rs, nil
}

// seen queues the roles of a command's token for recording when this instance
// has not recorded them for that user, so the policy knows the roles of a direct
// room's other user (a user chat never saw has no roles). The command does not
// wait for the write: one writer goroutine (rolesWriter) drains a bounded queue;
// when it is full the roles are recorded at that user's next command.
func (c *Core) seen(userID string, roles []string) {
	key := strings.Join(roles, ",")
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	old, ok := c.seenRoles[userID]
	if (ok && old == key) || (!ok && key == "") {
		return // nothing new (a user never recorded has no roles already)
	}
	select {
	case c.rolesQ <- seenRoles{userID, slices.Clone(roles), key}:
		if len(c.seenRoles) > 100_000 {
			clear(c.seenRoles) // bounded; re-recording costs one upsert per user
		}
		c.seenRoles[userID] = key
	default:
	}
}

type seenRoles struct {
	user  string
	roles []string
	key   string
}

// rolesWriter records queued roles until stop; Close waits for it.
func (c *Core) rolesWriter() {
	defer close(c.rolesDone)
	for {
		select {
		case <-c.stop:
			return
		case r := <-c.rolesQ:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.guard.SetRoles(ctx, r.user, r.roles)
			cancel()
			if err != nil {
				c.log.Warn("record roles", "user", r.user, "err", err)
				c.seenMu.Lock()
				if c.seenRoles[r.user] == r.key {
					delete(c.seenRoles, r.user) // retried at the next command
				}
				c.seenMu.Unlock()
			}
		}
	}
}

// forbidDirect returns forbidden when the policy or a block stops me and other
// sharing a direct room.
func (c *Core) forbidDirect(ctx context.Context, lp *livePolicy, me string, myRoles []string, other string) error {
	if blocked, err := c.guard.Blocks(ctx, other, me); err != nil {
		return fmt.Errorf("direct room: %w", err)
	} else if blocked {
		return command.Forbidden("you cannot message this user")
	}
	otherRoles, err := c.rolesOf(ctx, other)
	if err != nil {
		return err
	}
	if len(myRoles) == 0 && len(otherRoles) == 0 {
		return nil // neither is classified: roles are not in use (docs/protocol.md "Safeguarding")
	}
	if !lp.directAllowed(myRoles, otherRoles) {
		return command.Forbidden("the school's policy does not allow direct messages between %s and %s",
			roleWord(myRoles), roleWord(otherRoles))
	}
	return nil
}

func roleWord(rs []string) string {
	if len(rs) == 0 {
		return "unclassified users"
	}
	return strings.Join(rs, "/") + "s"
}

// teacherStudent reports whether the pair is a teacher and a student.
func teacherStudent(a, b []string) bool {
	return (slices.Contains(a, TokenTeacher) && slices.Contains(b, TokenStudent)) ||
		(slices.Contains(b, TokenTeacher) && slices.Contains(a, TokenStudent))
}

// ErrPolicy means the messaging policy refuses a membership change.
var ErrPolicy = errors.New("refused by the messaging policy")

// directMembersAllowed applies the direct-room pairs to a membership change of
// a direct room (ChatAdminService AddMembers, CreateRoom): every two full
// (not readonly) members must be an allowed pair.
func (c *Core) directMembersAllowed(ctx context.Context, roomID string, add []store.Member) error {
	lp, err := c.policy(ctx, DefaultSchool)
	if err != nil {
		return err
	}
	users := map[string]bool{}
	if st, err := c.room(ctx, roomID); err == nil {
		for _, u := range memberIDs(st) {
			if r, _ := st.Role(u); r != store.RoleReadonly {
				users[u] = true
			}
		}
	}
	for _, m := range add {
		if m.Role != store.RoleReadonly {
			users[m.UserID] = true
		}
	}
	ids := make([]string, 0, len(users))
	for u := range users {
		ids = append(ids, u)
	}
	slices.Sort(ids)
	roles := make([][]string, len(ids))
	for i, u := range ids {
		if roles[i], err = c.rolesOf(ctx, u); err != nil {
			return err
		}
	}
	for i := range ids {
		for j := i + 1; j < len(ids); j++ {
			if (len(roles[i]) > 0 || len(roles[j]) > 0) && !lp.directAllowed(roles[i], roles[j]) {
				return fmt.Errorf("%w: %s and %s may not share a direct room (%s, %s)", ErrPolicy, ids[i], ids[j], roleWord(roles[i]), roleWord(roles[j]))
			}
		}
	}
	return nil
}
