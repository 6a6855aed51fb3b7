package handler

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
)

// maxQueryIDs bounds one talim.presence.v1.query request.
const maxQueryIDs = 10000

// QueryRequest is the JSON request on talim.presence.v1.query (queue group presence),
// for internal services: {"userIds":["u1","u2"]}.
type QueryRequest struct {
	UserIDs []string `json:"userIds"`
}

// QueryResponse answers a QueryRequest. Online lists the requested users that hold
// at least one live connection (or are within their grace period) — whatever their
// chosen status, invisible included, because it is meant for delivery decisions such
// as notification's delivered-live count. Statuses maps every requested user to the
// status others see (online, away, busy or offline); no visibility rule applies to
// internal callers. Error is set (and the rest empty) when the request is invalid.
type QueryResponse struct {
	Online   []string          `json:"online"`
	Statuses map[string]string `json:"statuses,omitempty"`
	Error    string            `json:"error,omitempty"`
}

// ServeQuery answers a request on talim.presence.v1.query (a nats.MsgHandler).
func (h *Handler) ServeQuery(m *nats.Msg) {
	var req QueryRequest
	resp := QueryResponse{Online: []string{}}
	switch err := json.Unmarshal(m.Data, &req); {
	case err != nil:
		resp.Error = "bad request: want {\"userIds\":[\"...\"]}"
	case len(req.UserIDs) > maxQueryIDs:
		resp.Error = "bad request: too many userIds"
	default:
		resp.Online, resp.Statuses = h.core.Query(req.UserIDs)
	}
	b, err := json.Marshal(resp)
	if err != nil {
		h.log.Error("marshal query response", "err", err)
		return
	}
	if err := m.Respond(b); err != nil {
		h.log.Debug("respond to query", "err", err)
	}
}
