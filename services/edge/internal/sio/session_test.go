package sio

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestSessionHappyPath(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	s := NewSession(clk.now)
	if len(s.SID) != SIDLen || len(s.SocketID) != SIDLen || s.SID == s.SocketID {
		t.Fatalf("ids %q %q", s.SID, s.SocketID)
	}
	open := string(s.Open(nil, 25*time.Second, 20*time.Second, 65536))
	if want := `0{"sid":"` + s.SID + `","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":65536}`; open != want {
		t.Fatalf("open = %s", open)
	}
	if s.State() != StateAwaitingConnect {
		t.Fatalf("state %v", s.State())
	}

	in, err := s.Handle([]byte(`40{"token":"jwt"}`), nil)
	if err != nil || in.Kind != KindConnect || string(in.Data) != `{"token":"jwt"}` {
		t.Fatalf("connect: %+v %v", in, err)
	}
	// Auth failed once: CONNECT_ERROR, still waiting.
	if got := string(s.Reject(nil, "unauthorized")); got != `44{"message":"unauthorized"}` {
		t.Fatalf("reject = %s", got)
	}
	if s.State() != StateAwaitingConnect {
		t.Fatalf("state %v", s.State())
	}
	in, err = s.Handle([]byte(`40`), nil)
	if err != nil || in.Kind != KindConnect || in.Data != nil {
		t.Fatalf("connect without auth: %+v %v", in, err)
	}
	if got := string(s.Accept(nil)); got != `40{"sid":"`+s.SocketID+`"}` {
		t.Fatalf("accept = %s", got)
	}
	if s.State() != StateConnected {
		t.Fatalf("state %v", s.State())
	}

	in, err = s.Handle([]byte(`4217["join-chat-room",{"roomId":"r"}]`), nil)
	if err != nil || in.Kind != KindEvent || in.Name != "join-chat-room" || string(in.Data) != `{"roomId":"r"}` || in.AckID != 17 {
		t.Fatalf("event: %+v %v", in, err)
	}
	in, err = s.Handle([]byte(`42["typing",{"roomId":"r","isTyping":true}]`), nil)
	if err != nil || in.Kind != KindEvent || in.AckID != -1 {
		t.Fatalf("event without ack: %+v %v", in, err)
	}
	in, err = s.Handle([]byte(`423["connect"]`), nil)
	if err != nil || in.Kind != KindBadEvent || in.AckID != 3 || !errors.Is(in.Err, ErrBadPayload) {
		t.Fatalf("bad event: %+v %v", in, err)
	}
	in, err = s.Handle([]byte(`42["`+strings.Repeat("x", 65)+`"]`), nil)
	if err != nil || in.Kind != KindBadEvent || in.AckID != -1 {
		t.Fatalf("long name: %+v %v", in, err)
	}
	// Client ACK: ignored.
	if in, err = s.Handle([]byte(`435[{}]`), nil); err != nil || in.Kind != KindNone {
		t.Fatalf("client ack: %+v %v", in, err)
	}

	// Ping / pong bookkeeping.
	clk.t = clk.t.Add(25 * time.Second)
	if got := string(s.Ping(nil)); got != "2" {
		t.Fatalf("ping = %q", got)
	}
	if s.PongOverdue(clk.t.Add(19*time.Second), 20*time.Second) {
		t.Fatal("overdue too early")
	}
	if !s.PongOverdue(clk.t.Add(21*time.Second), 20*time.Second) {
		t.Fatal("not overdue")
	}
	clk.t = clk.t.Add(time.Second)
	if in, err = s.Handle([]byte(`3`), nil); err != nil || in.Kind != KindNone {
		t.Fatalf("pong: %+v %v", in, err)
	}
	if !s.LastPong().Equal(clk.t) || s.PongOverdue(clk.t.Add(time.Hour), 20*time.Second) {
		t.Fatalf("last pong %v", s.LastPong())
	}
	if in, err = s.Handle([]byte(`6`), nil); err != nil || in.Kind != KindNone {
		t.Fatalf("noop: %+v %v", in, err)
	}
	in, err = s.Handle([]byte(`2probe`), make([]byte, 0, 16))
	if err != nil || in.Kind != KindReply || string(in.Reply) != "3probe" {
		t.Fatalf("client ping: %+v %v", in, err)
	}

	// Second CONNECT is a state error.
	if _, err = s.Handle([]byte(`40`), nil); !errors.Is(err, ErrState) {
		t.Fatalf("second connect: %v", err)
	}

	in, err = s.Handle([]byte(`41`), nil)
	if err != nil || in.Kind != KindClose || s.State() != StateClosed {
		t.Fatalf("disconnect: %+v %v %v", in, err, s.State())
	}
	if _, err = s.Handle([]byte(`3`), nil); !errors.Is(err, ErrState) {
		t.Fatalf("after close: %v", err)
	}
}

func TestSessionErrors(t *testing.T) {
	tests := []struct {
		name    string
		connect bool
		frame   string
		kind    Kind
		reply   string
		wantErr error
	}{
		{name: "event before connect", frame: `42["a",{}]`, wantErr: ErrState},
		{name: "ack before connect", frame: `430[]`, wantErr: ErrState},
		{name: "disconnect before connect", frame: `41`, wantErr: ErrState},
		{name: "other namespace", frame: `40/admin,{"token":"x"}`, kind: KindReply, reply: `44/admin,{"message":"Invalid namespace"}`},
		{name: "other namespace connected", connect: true, frame: `40/admin,`, kind: KindReply, reply: `44/admin,{"message":"Invalid namespace"}`},
		{name: "event on other namespace", connect: true, frame: `42/admin,["a"]`, wantErr: ErrState},
		{name: "client connect_error", connect: true, frame: `44{"message":"x"}`, wantErr: ErrState},
		{name: "client open", frame: `0{}`, wantErr: ErrState},
		{name: "client upgrade", frame: `5`, wantErr: ErrState},
		{name: "eio close", frame: `1`, kind: KindClose},
		{name: "binary", connect: true, frame: `451-["a",{"_placeholder":true,"num":0}]`, wantErr: ErrBinaryUnsupported},
		{name: "empty", frame: ``, wantErr: ErrEmpty},
		{name: "empty message", frame: `4`, wantErr: ErrEmpty},
		{name: "bad eio type", frame: `9`, wantErr: ErrUnknownType},
		{name: "bad sio type", frame: `48`, wantErr: ErrUnknownType},
		{name: "bad json", connect: true, frame: `42["a",{]`, wantErr: ErrBadPayload},
		{name: "bad ack id", connect: true, frame: `421234567890123456["a"]`, wantErr: ErrBadAckID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSession(nil)
			if tt.connect {
				if in, err := s.Handle([]byte(`40`), nil); err != nil || in.Kind != KindConnect {
					t.Fatalf("connect: %+v %v", in, err)
				}
				s.Accept(nil)
			}
			in, err := s.Handle([]byte(tt.frame), nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !IsProtocolError(err) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || in.Kind != tt.kind || string(in.Reply) != tt.reply {
				t.Fatalf("got %+v (%s) %v", in, in.Reply, err)
			}
		})
	}
}

func TestSessionConcurrentPing(t *testing.T) {
	s := NewSession(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000; i++ {
			s.Ping(nil)
			_ = s.LastPong()
			_ = s.State()
		}
	}()
	for i := 0; i < 1000; i++ {
		if _, err := s.Handle([]byte("3"), nil); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}
