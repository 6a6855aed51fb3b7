package e2e

// Fuzz targets for parsers of untrusted bytes that live outside the edge (the edge's
// own envelope and Socket.IO parsers have theirs in services/edge/internal). The
// seeds are in the code (f.Add). scripts/fuzz.sh runs every target briefly in
// `make test`; the longer run is in docs/reliability.md.

import (
	"context"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/talim/realtime/pkg/auth"
	"github.com/talim/realtime/pkg/command"
	"github.com/talim/realtime/pkg/subject"
	edgev1 "github.com/talim/realtime/proto/talim/edge/v1"
)

// FuzzCommandDecode: the data of every client event reaches a service through
// command.Decode. Whatever the bytes, it returns nil or a bad_request *command.Error
// (never another error, never a panic), and on success every string field holds a
// string (an operator object or array can never land in an id).
func FuzzCommandDecode(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `{"roomId":"r1","content":"hi","clientMsgId":"c1"}`,
		`{"roomId":{"$gt":""}}`, `{"roomId":["a","b"]}`, `{"ids":[{"$ne":null}]}`, `{"seq":"1"}`,
		`{"seq":1e400}`, `[` + strings.Repeat(`[`, 100), `"str"`, `{"roomId":"\ud800"}`, `{"a":` + strings.Repeat(`{"a":`, 50),
		"{\"roomId\":\"\xff\"}", `{"roomId":"r","roomId":{"$gt":""}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v struct {
			RoomID  string   `json:"roomId"`
			IDs     []string `json:"ids"`
			Seq     int64    `json:"seq"`
			IsTyp   bool     `json:"isTyping"`
			Content string   `json:"content"`
		}
		err := command.Decode(&edgev1.Command{Data: data}, &v)
		if err == nil {
			return
		}
		pe, ok := err.(*command.Error)
		if !ok || pe.Code != command.CodeBadRequest {
			t.Fatalf("Decode(%q) = %v, want nil or bad_request", data, err)
		}
	})
}

var subjectToken = regexp.MustCompile(`^[A-Za-z0-9_\-:@~]+$`)

// FuzzSubjectToken: user and room ids come from clients and tokens and are embedded
// in NATS subjects. A token is one subject token (no '.', no wildcard, no space),
// and different ids never share a token.
func FuzzSubjectToken(f *testing.F) {
	for _, s := range []string{"", "u1", "a.b", "*", ">", "a b", "~", "~dTE", "room-123", "dm:ab", "ü", strings.Repeat("x", 129), "t1@school", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		tok := subject.Token(id)
		if !subjectToken.MatchString(tok) {
			t.Fatalf("Token(%q) = %q: not a single safe subject token", id, tok)
		}
		if rest, ok := strings.CutPrefix(tok, "~"); ok {
			raw, err := base64.RawURLEncoding.DecodeString(rest)
			if err != nil || string(raw) != id {
				t.Fatalf("Token(%q) = %q does not decode back (%q, %v)", id, tok, raw, err)
			}
		} else if tok != id {
			t.Fatalf("Token(%q) = %q", id, tok)
		}
	})
}

// FuzzVerifyToken: the edge verifies untrusted tokens with auth.Verifier. Anything
// not signed with our secret is refused — mutations of a valid token included — and
// nothing panics.
func FuzzVerifyToken(f *testing.F) {
	const secret = "fuzz-secret"
	good, err := auth.SignHS256(secret, auth.Claims{UserID: "u1", ExpiresAt: time.Now().Add(time.Hour)}, "", "")
	if err != nil {
		f.Fatal(err)
	}
	v, err := auth.NewVerifier(context.Background(), auth.Config{Secret: secret})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, 0, byte(0))
	f.Add(good, len(good)-1, byte('A'))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0.", 0, byte(0))
	f.Add("a.b.c", 1, byte('.'))
	f.Fuzz(func(t *testing.T, tok string, pos int, b byte) {
		if pos >= 0 && pos < len(tok) && tok[pos] != b {
			tok = tok[:pos] + string(b) + tok[pos+1:]
		} else if tok == good {
			return // the unmodified token is valid
		}
		c, err := v.Verify(tok)
		if err == nil && tok != good {
			// A different string can still verify if only the base64 padding bits of
			// the signature changed; it must then carry the same claims.
			if c.UserID != "u1" {
				t.Fatalf("Verify accepted a forged token %q as %+v", tok, c)
			}
		}
	})
}
