// Package records is the wire of the records requests chat sends to the services
// that own a user's other data (pkg/subject RecordsExport, RecordsErase;
// docs/safeguarding.md): the JSON messages and a responder those services run.
package records

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/talim/realtime/pkg/subject"
)

// Limits of one request.
const (
	// MaxLines bounds the lines of one export reply (replies stay far below the
	// NATS payload limit: a line is one small document).
	MaxLines = 200
	// Timeout bounds the store work behind one request.
	Timeout = 10 * time.Second
)

// Line is one exported record: what it is and the document, as JSON.
type Line struct {
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// ExportRequest asks for a page of a user's records after the cursor After.
type ExportRequest struct {
	UserID string `json:"userId"`
	After  string `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// ExportReply is one page; Next is the cursor of the next page (empty: done).
type ExportReply struct {
	Lines []Line `json:"lines"`
	Next  string `json:"next,omitempty"`
	Error string `json:"error,omitempty"`
}

// EraseRequest asks to erase a user's records.
type EraseRequest struct {
	UserID string `json:"userId"`
}

// EraseReply says what was removed, by kind.
type EraseReply struct {
	Removed map[string]int64 `json:"removed"`
	Error   string           `json:"error,omitempty"`
}

// Owner is what a service that owns user data implements.
type Owner interface {
	// Export returns up to limit lines of userID's records after the cursor
	// after, and the cursor of the next page ("" when done).
	Export(ctx context.Context, userID, after string, limit int) ([]Line, string, error)
	// Erase removes userID's records and counts them by kind.
	Erase(ctx context.Context, userID string) (map[string]int64, error)
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9_\-:@.]{1,128}$`)

// ValidUserID reports whether id is a user id (the chat rules: never an operator).
func ValidUserID(id string) bool { return idRe.MatchString(id) }

// Serve answers RecordsExport(service) and RecordsErase(service) in queue group
// service with o. The caller unsubscribes the returned subscriptions.
func Serve(nc *nats.Conn, service string, o Owner, log *slog.Logger) ([]*nats.Subscription, error) {
	exp, err := nc.QueueSubscribe(subject.RecordsExport(service), service, func(m *nats.Msg) {
		var req ExportRequest
		var rep ExportReply
		switch {
		case json.Unmarshal(m.Data, &req) != nil:
			rep.Error = "malformed request"
		case !ValidUserID(req.UserID):
			rep.Error = "invalid userId"
		case len(req.After) > 256:
			rep.Error = "invalid after"
		default:
			limit := req.Limit
			if limit <= 0 || limit > MaxLines {
				limit = MaxLines
			}
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			lines, next, err := o.Export(ctx, req.UserID, req.After, limit)
			cancel()
			if err != nil {
				log.Warn("records export", "service", service, "err", err)
				rep.Error = "unavailable"
			}
			rep.Lines, rep.Next = lines, next
		}
		respond(m, rep)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe records export: %w", err)
	}
	er, err := nc.QueueSubscribe(subject.RecordsErase(service), service, func(m *nats.Msg) {
		var req EraseRequest
		var rep EraseReply
		switch {
		case json.Unmarshal(m.Data, &req) != nil:
			rep.Error = "malformed request"
		case !ValidUserID(req.UserID):
			rep.Error = "invalid userId"
		default:
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			removed, err := o.Erase(ctx, req.UserID)
			cancel()
			if err != nil {
				log.Warn("records erase", "service", service, "err", err)
				rep.Error = "unavailable"
			}
			rep.Removed = removed
		}
		respond(m, rep)
	})
	if err != nil {
		_ = exp.Unsubscribe()
		return nil, fmt.Errorf("subscribe records erase: %w", err)
	}
	return []*nats.Subscription{exp, er}, nil
}

func respond(m *nats.Msg, v any) {
	if m.Reply == "" {
		return
	}
	if b, err := json.Marshal(v); err == nil {
		_ = m.Respond(b)
	}
}

// Export asks service for every page of userID's records, calling emit per page.
func Export(ctx context.Context, nc *nats.Conn, service, userID string, emit func([]Line) error) error {
	after := ""
	for page := 0; page < 100000; page++ {
		b, _ := json.Marshal(ExportRequest{UserID: userID, After: after, Limit: MaxLines})
		m, err := nc.RequestWithContext(ctx, subject.RecordsExport(service), b)
		if err != nil {
			return fmt.Errorf("export from %s: %w", service, err)
		}
		var rep ExportReply
		if err := json.Unmarshal(m.Data, &rep); err != nil {
			return fmt.Errorf("export from %s: bad reply: %w", service, err)
		}
		if rep.Error != "" {
			return fmt.Errorf("export from %s: %s", service, rep.Error)
		}
		if len(rep.Lines) > 0 {
			if err := emit(rep.Lines); err != nil {
				return err
			}
		}
		if rep.Next == "" || rep.Next == after {
			return nil
		}
		after = rep.Next
	}
	return fmt.Errorf("export from %s: too many pages", service)
}

// Erase asks service to erase userID's records.
func Erase(ctx context.Context, nc *nats.Conn, service, userID string) (map[string]int64, error) {
	b, _ := json.Marshal(EraseRequest{UserID: userID})
	m, err := nc.RequestWithContext(ctx, subject.RecordsErase(service), b)
	if err != nil {
		return nil, fmt.Errorf("erase in %s: %w", service, err)
	}
	var rep EraseReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return nil, fmt.Errorf("erase in %s: bad reply: %w", service, err)
	}
	if rep.Error != "" {
		return rep.Removed, fmt.Errorf("erase in %s: %s", service, rep.Error)
	}
	return rep.Removed, nil
}
