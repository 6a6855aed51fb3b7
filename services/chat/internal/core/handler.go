package core

import (
	"context"

	"github.com/talim/realtime/pkg/command"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
	"github.com/talim/realtime/services/chat/internal/roster"
)

// checker is a request that validates its own fields (ids, required fields)
// before its handler runs; the checks need no store or cache.
type checker interface{ check() error }

// typed is the one opening of every chat client event: it decodes the command's
// data into a fresh T with command.Decode (wrong types, operator objects such as
// {"$gt":""} where a string is expected and non-object data are a bad_request),
// runs T's check method when it has one, and only then calls h.
func typed[T any](h func(ctx context.Context, cmd *edgev1.Command, req *T) (*edgev1.Reply, error)) command.Handler {
	return func(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
		req := new(T)
		if err := command.Decode(cmd, req); err != nil {
			return nil, err
		}
		if c, ok := any(req).(checker); ok {
			if err := c.check(); err != nil {
				return nil, err
			}
		}
		return h(ctx, cmd, req)
	}
}

// firstErr returns the first non-nil error of errs (checks in field order).
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// handle registers h for event, recording the roles in each command's token
// first (policy.go seen) so the messaging policy knows every user's roles.
func (c *Core) handle(srv *command.Server, event string, h command.Handler) {
	srv.Handle(event, func(ctx context.Context, cmd *edgev1.Command) (*edgev1.Reply, error) {
		if id := cmd.GetIdentity(); id.GetUserId() != "" {
			c.seen(id.GetUserId(), id.GetRoles())
		}
		return h(ctx, cmd)
	})
}

// memberIDs lists the members of a (small, direct) room.
func memberIDs(st *roster.State) []string {
	ms := st.Members()
	var out []string
	for _, sh := range ms.Shards {
		out = append(out, sh...)
	}
	return out
}
