package sio

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// State is the state of a Socket.IO session on the main namespace.
type State int32

const (
	// StateAwaitingConnect means the Engine.IO open packet has been sent, the
	// client has not been accepted on "/" yet (no CONNECT, or CONNECT
	// received and being authenticated, or refused with CONNECT_ERROR).
	StateAwaitingConnect State = iota
	// StateConnected means the CONNECT was accepted; events flow.
	StateConnected
	// StateClosed means the session is over; every further frame is ErrState.
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateAwaitingConnect:
		return "awaiting-connect"
	case StateConnected:
		return "connected"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Kind tells the adapter what to do with an inbound frame.
type Kind int

const (
	// KindNone means nothing to do (pong, noop, client-sent ACK).
	KindNone Kind = iota
	// KindReply means write Inbound.Reply to the client and carry on (pong to a
	// client ping; CONNECT_ERROR for a namespace other than "/").
	KindReply
	// KindConnect means CONNECT on "/". Inbound.Data is the auth object (nil when
	// the client sent none, e.g. 40 or 40{"token":"..."}). Authenticate,
	// then call Session.Accept or Session.Reject and write the result.
	KindConnect
	// KindEvent means EVENT on "/". Inbound.Name, Inbound.Data (the first
	// argument, {} when absent) and Inbound.AckID (-1 when the client wants
	// no ack) are set.
	KindEvent
	// KindBadEvent means a well-formed EVENT packet whose payload is unusable
	// (bad or reserved event name). Inbound.Err says why and Inbound.AckID
	// is set: answer bad_request (through AppendAck when AckID >= 0) and
	// keep the connection, like the native protocol does (docs/protocol.md "Frames").
	KindBadEvent
	// KindClose means the client closed the session (Engine.IO close or
	// Socket.IO DISCONNECT): close the WebSocket. The session is closed.
	KindClose
)

func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindReply:
		return "reply"
	case KindConnect:
		return "connect"
	case KindEvent:
		return "event"
	case KindBadEvent:
		return "bad-event"
	case KindClose:
		return "close"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Inbound is the classification of one inbound text frame.
type Inbound struct {
	Kind Kind
	// Name is the event name (KindEvent).
	Name string
	// Data is the event's first argument (KindEvent) or the CONNECT auth
	// object (KindConnect, nil when absent). It aliases the frame.
	Data json.RawMessage
	// AckID is the client's ack id, -1 when absent (KindEvent, KindBadEvent).
	AckID int64
	// Namespace is the packet's namespace ("/" for the main one).
	Namespace string
	// Reply is the frame to write back (KindReply); it was appended to the
	// dst buffer given to Handle.
	Reply []byte
	// Err explains a KindBadEvent.
	Err error
}

// InvalidNamespaceMessage is the CONNECT_ERROR message for namespaces other
// than "/", the one the reference server uses.
const InvalidNamespaceMessage = "Invalid namespace"

// Session is the Socket.IO state machine of one WebSocket connection. It
// does no I/O: the adapter reads frames, calls Handle, writes the replies and
// runs the timers (ping every pingInterval, close when LastPong is older than
// pingInterval+pingTimeout, close when no CONNECT is accepted in time).
//
// Handle, Accept and Reject must be called from one goroutine (the reader);
// Ping, LastPong, State and Close are safe from any goroutine.
type Session struct {
	// SID is the Engine.IO session id, sent in the open packet.
	SID string
	// SocketID is the Socket.IO socket id, sent in the CONNECT reply.
	SocketID string
	// PID is the private session id of connection state recovery
	// (docs/socketio.md, "Connection state recovery"), sent in the CONNECT reply
	// when set.
	PID string

	state    atomic.Int32
	lastPing atomic.Int64 // unix nanos of the last ping sent
	lastPong atomic.Int64 // unix nanos of the last pong received (or open)
	now      func() time.Time
}

// NewSession returns a session with fresh random ids. now is the clock
// (time.Now when nil).
func NewSession(now func() time.Time) *Session {
	if now == nil {
		now = time.Now
	}
	s := &Session{SID: NewSID(), SocketID: NewSID(), now: now}
	s.lastPong.Store(now().UnixNano())
	return s
}

// State returns the current state.
func (s *Session) State() State { return State(s.state.Load()) }

// Close moves the session to StateClosed.
func (s *Session) Close() { s.state.Store(int32(StateClosed)) }

// Open appends the Engine.IO open packet of this session.
func (s *Session) Open(dst []byte, pingInterval, pingTimeout time.Duration, maxPayload int64) []byte {
	return AppendOpen(dst, s.SID, pingInterval.Milliseconds(), pingTimeout.Milliseconds(), maxPayload)
}

// Ping appends an Engine.IO ping and records when it was sent.
func (s *Session) Ping(dst []byte) []byte {
	s.lastPing.Store(s.now().UnixNano())
	return AppendPing(dst)
}

// LastPong returns when the client last answered a ping (the session's
// creation time before the first pong).
func (s *Session) LastPong() time.Time { return time.Unix(0, s.lastPong.Load()) }

// PongOverdue reports whether a ping sent more than timeout ago is still
// unanswered at now (Engine.IO v4: the client must answer within
// pingTimeout).
func (s *Session) PongOverdue(now time.Time, timeout time.Duration) bool {
	ping, pong := s.lastPing.Load(), s.lastPong.Load()
	return ping != 0 && ping > pong && now.UnixNano()-ping > int64(timeout)
}

// Accept marks the CONNECT accepted and appends the reply 40{"sid":...}
// (with "pid" when PID is set).
func (s *Session) Accept(dst []byte) []byte {
	s.state.CompareAndSwap(int32(StateAwaitingConnect), int32(StateConnected))
	if s.PID != "" {
		return AppendConnectPID(dst, s.SocketID, s.PID)
	}
	return AppendConnect(dst, s.SocketID)
}

// Reject appends a CONNECT_ERROR with message (e.g. "unauthorized"); the
// session keeps waiting for a CONNECT (socket.io-client only retries when
// the application calls socket.connect() again).
func (s *Session) Reject(dst []byte, message string) []byte {
	return AppendConnectError(dst, message)
}

// Handle classifies one inbound WebSocket text frame. dst is a scratch
// buffer for an immediate reply (Inbound.Reply). A non-nil error means the
// frame is malformed (wrapping ErrEmpty, ErrUnknownType, ErrBadNamespace,
// ErrBadAckID, ErrBadPayload, ErrBinaryUnsupported) or not allowed now
// (ErrState): the reference server closes the connection in both cases and
// so should the adapter. Data in the result aliases frame.
func (s *Session) Handle(frame, dst []byte) (Inbound, error) {
	in := Inbound{AckID: -1, Namespace: DefaultNamespace}
	if s.State() == StateClosed {
		return in, fmt.Errorf("%w: session closed", ErrState)
	}
	ep, err := ParseEIO(frame)
	if err != nil {
		return in, err
	}
	switch ep.Type {
	case EIOPong:
		s.lastPong.Store(s.now().UnixNano())
		return in, nil
	case EIONoop:
		return in, nil
	case EIOPing:
		in.Kind = KindReply
		in.Reply = AppendPong(dst, ep.Data)
		return in, nil
	case EIOClose:
		s.Close()
		in.Kind = KindClose
		return in, nil
	case EIOOpen, EIOUpgrade:
		return in, fmt.Errorf("%w: client sent engine.io packet type %d", ErrState, ep.Type)
	}

	// EIOMessage
	p, err := ParseSIO(ep.Data)
	in.Namespace = p.Namespace
	if err != nil {
		return in, err
	}
	isMain := p.Namespace == DefaultNamespace
	connected := s.State() == StateConnected
	switch p.Type {
	case SIOConnect:
		if !isMain {
			in.Kind = KindReply
			in.Reply = AppendConnectErrorNsp(dst, p.Namespace, InvalidNamespaceMessage)
			return in, nil
		}
		if connected {
			return in, fmt.Errorf("%w: CONNECT on an already connected namespace", ErrState)
		}
		in.Kind = KindConnect
		in.Data = p.Data
		return in, nil
	case SIODisconnect:
		if !isMain || !connected {
			return in, fmt.Errorf("%w: DISCONNECT for a namespace that is not connected", ErrState)
		}
		s.Close()
		in.Kind = KindClose
		return in, nil
	case SIOEvent:
		if !isMain || !connected {
			return in, fmt.Errorf("%w: EVENT for a namespace that is not connected", ErrState)
		}
		in.AckID = p.AckID
		name, arg, err := parseEventValid(p.Data) // ParseSIO ran json.Valid
		if err != nil {
			in.Kind = KindBadEvent
			in.Err = err
			return in, nil
		}
		in.Kind = KindEvent
		in.Name = name
		in.Data = arg
		return in, nil
	case SIOAck:
		if !isMain || !connected {
			return in, fmt.Errorf("%w: ACK for a namespace that is not connected", ErrState)
		}
		// The server never asks the client for acks: nothing to match.
		return in, nil
	default: // SIOConnectError: server → client only
		return in, fmt.Errorf("%w: client sent CONNECT_ERROR", ErrState)
	}
}

// IsProtocolError reports whether err came from this package's parsers or
// state machine (as opposed to, say, an I/O error).
func IsProtocolError(err error) bool {
	for _, e := range []error{ErrEmpty, ErrUnknownType, ErrBadNamespace, ErrBadAckID, ErrBadPayload, ErrBinaryUnsupported, ErrState} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
