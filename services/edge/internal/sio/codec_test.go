package sio

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseEIO(t *testing.T) {
	tests := []struct {
		in       string
		wantType byte
		wantData string
		wantErr  error
	}{
		{in: `0{"sid":"x"}`, wantType: EIOOpen, wantData: `{"sid":"x"}`},
		{in: `1`, wantType: EIOClose},
		{in: `2`, wantType: EIOPing},
		{in: `2probe`, wantType: EIOPing, wantData: "probe"},
		{in: `3`, wantType: EIOPong},
		{in: `3probe`, wantType: EIOPong, wantData: "probe"},
		{in: `42["a"]`, wantType: EIOMessage, wantData: `2["a"]`},
		{in: `4`, wantType: EIOMessage},
		{in: `5`, wantType: EIOUpgrade},
		{in: `6`, wantType: EIONoop},
		{in: ``, wantErr: ErrEmpty},
		{in: `7`, wantErr: ErrUnknownType},
		{in: `a`, wantErr: ErrUnknownType},
		{in: `/`, wantErr: ErrUnknownType},
		{in: "\x00", wantErr: ErrUnknownType},
	}
	for _, tt := range tests {
		p, err := ParseEIO([]byte(tt.in))
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseEIO(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseEIO(%q) unexpected err %v", tt.in, err)
			continue
		}
		if p.Type != tt.wantType || string(p.Data) != tt.wantData {
			t.Errorf("ParseEIO(%q) = {%d %q}, want {%d %q}", tt.in, p.Type, p.Data, tt.wantType, tt.wantData)
		}
		if got := string(AppendEIO(nil, p)); got != tt.in {
			t.Errorf("AppendEIO round trip: %q, want %q", got, tt.in)
		}
	}
}

func TestParseSIO(t *testing.T) {
	type pk = SIOPacket
	tests := []struct {
		in      string
		want    pk
		wantErr error
	}{
		// CONNECT
		{in: `0`, want: pk{Type: SIOConnect, Namespace: "/", AckID: -1}},
		{in: `0{"token":"abc"}`, want: pk{Type: SIOConnect, Namespace: "/", AckID: -1, Data: json.RawMessage(`{"token":"abc"}`)}},
		{in: `0/admin,`, want: pk{Type: SIOConnect, Namespace: "/admin", AckID: -1}},
		{in: `0/admin,{"token":"abc"}`, want: pk{Type: SIOConnect, Namespace: "/admin", AckID: -1, Data: json.RawMessage(`{"token":"abc"}`)}},
		{in: `0/admin`, want: pk{Type: SIOConnect, Namespace: "/admin", AckID: -1}},
		{in: `0/,{}`, want: pk{Type: SIOConnect, Namespace: "/", AckID: -1, Data: json.RawMessage(`{}`)}},
		{in: `0[]`, wantErr: ErrBadPayload},
		{in: `0"x"`, wantErr: ErrBadPayload},
		{in: `0{`, wantErr: ErrBadPayload},
		{in: `0{"a":1}x`, wantErr: ErrBadPayload},
		{in: `01{}`, wantErr: ErrBadAckID},
		// DISCONNECT
		{in: `1`, want: pk{Type: SIODisconnect, Namespace: "/", AckID: -1}},
		{in: `1/admin,`, want: pk{Type: SIODisconnect, Namespace: "/admin", AckID: -1}},
		{in: `1{}`, wantErr: ErrBadPayload},
		{in: `12`, wantErr: ErrBadAckID},
		// EVENT
		{in: `2["chat-message",{"x":1}]`, want: pk{Type: SIOEvent, Namespace: "/", AckID: -1, Data: json.RawMessage(`["chat-message",{"x":1}]`)}},
		{in: `217["join-chat-room",{"roomId":"r"}]`, want: pk{Type: SIOEvent, Namespace: "/", AckID: 17, Data: json.RawMessage(`["join-chat-room",{"roomId":"r"}]`)}},
		{in: `20["a"]`, want: pk{Type: SIOEvent, Namespace: "/", AckID: 0, Data: json.RawMessage(`["a"]`)}},
		{in: `2/admin,5["a"]`, want: pk{Type: SIOEvent, Namespace: "/admin", AckID: 5, Data: json.RawMessage(`["a"]`)}},
		{in: `2999999999999999["a"]`, want: pk{Type: SIOEvent, Namespace: "/", AckID: 999999999999999, Data: json.RawMessage(`["a"]`)}},
		{in: `2 ["a"] `, want: pk{Type: SIOEvent, Namespace: "/", AckID: -1, Data: json.RawMessage(` ["a"] `)}},
		{in: `21234567890123456["a"]`, wantErr: ErrBadAckID},
		{in: `299999999999999999999999["a"]`, wantErr: ErrBadAckID},
		{in: `207["a"]`, wantErr: ErrBadAckID},
		{in: `2`, wantErr: ErrBadPayload},
		{in: `217`, wantErr: ErrBadPayload},
		{in: `2{"a":1}`, wantErr: ErrBadPayload},
		{in: `2["a"`, wantErr: ErrBadPayload},
		{in: `2["a"]]`, wantErr: ErrBadPayload},
		{in: `2x`, wantErr: ErrBadPayload},
		// ACK
		{in: `317[{"roomId":"r"}]`, want: pk{Type: SIOAck, Namespace: "/", AckID: 17, Data: json.RawMessage(`[{"roomId":"r"}]`)}},
		{in: `30[]`, want: pk{Type: SIOAck, Namespace: "/", AckID: 0, Data: json.RawMessage(`[]`)}},
		{in: `3[]`, wantErr: ErrBadAckID},
		{in: `317`, wantErr: ErrBadPayload},
		{in: `317{}`, wantErr: ErrBadPayload},
		// CONNECT_ERROR
		{in: `4{"message":"nope"}`, want: pk{Type: SIOConnectError, Namespace: "/", AckID: -1, Data: json.RawMessage(`{"message":"nope"}`)}},
		{in: `4"nope"`, want: pk{Type: SIOConnectError, Namespace: "/", AckID: -1, Data: json.RawMessage(`"nope"`)}},
		{in: `4`, wantErr: ErrBadPayload},
		{in: `4[]`, wantErr: ErrBadPayload},
		{in: `41{}`, wantErr: ErrBadAckID},
		// binary
		{in: `51-["a",{"_placeholder":true,"num":0}]`, wantErr: ErrBinaryUnsupported},
		{in: `61-17[{"_placeholder":true,"num":0}]`, wantErr: ErrBinaryUnsupported},
		{in: `5["a"]`, wantErr: ErrBinaryUnsupported},
		{in: `5`, wantErr: ErrBinaryUnsupported},
		{in: `599999999-["a"]`, wantErr: ErrBinaryUnsupported},
		// framing
		{in: ``, wantErr: ErrEmpty},
		{in: `7`, wantErr: ErrUnknownType},
		{in: `9["a"]`, wantErr: ErrUnknownType},
		{in: `x`, wantErr: ErrUnknownType},
		{in: "0/ad\x01min,", wantErr: ErrBadNamespace},
		{in: "0/\xff,", wantErr: ErrBadNamespace},
		{in: "0/" + strings.Repeat("a", MaxNamespaceLen) + ",", wantErr: ErrBadNamespace},
	}
	for _, tt := range tests {
		p, err := ParseSIO([]byte(tt.in))
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseSIO(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSIO(%q) unexpected err %v", tt.in, err)
			continue
		}
		if p.Data == nil && tt.want.Data != nil || p.Data != nil && tt.want.Data == nil || !reflect.DeepEqual(p, tt.want) {
			t.Errorf("ParseSIO(%q) = %+v, want %+v", tt.in, p, tt.want)
		}
		// Round trip: encoding and parsing again gives the same packet.
		enc := AppendSIO(nil, p)
		p2, err := ParseSIO(enc[1:])
		if err != nil || !reflect.DeepEqual(p, p2) {
			t.Errorf("round trip of %q via %q: %+v, %v", tt.in, enc, p2, err)
		}
	}
}

func TestParseSIOBinaryFields(t *testing.T) {
	p, err := ParseSIO([]byte(`52-/admin,7["a"]`))
	if !errors.Is(err, ErrBinaryUnsupported) {
		t.Fatalf("err = %v", err)
	}
	if p.Type != SIOBinaryEvent || p.Attachments != 2 || p.Namespace != "/admin" || p.AckID != 7 {
		t.Fatalf("packet = %+v", p)
	}
}

func TestParseEvent(t *testing.T) {
	long := strings.Repeat("é", MaxEventNameLen)
	tests := []struct {
		in       string
		wantName string
		wantArg  string
		wantErr  bool
	}{
		{in: `["chat-message",{"x":1}]`, wantName: "chat-message", wantArg: `{"x":1}`},
		{in: `["list-rooms"]`, wantName: "list-rooms", wantArg: `{}`},
		{in: `["list-rooms",null]`, wantName: "list-rooms", wantArg: `{}`},
		{in: `[ "a" , {"b":[1,2,{"c":"]}"}]} , 3, "x" ]`, wantName: "a", wantArg: `{"b":[1,2,{"c":"]}"}]}`},
		{in: `["a","s\"tr]"]`, wantName: "a", wantArg: `"s\"tr]"`},
		{in: `["a",42,{"ignored":true}]`, wantName: "a", wantArg: `42`},
		{in: `["a",[1,[2]]]`, wantName: "a", wantArg: `[1,[2]]`},
		{in: `["a",true]`, wantName: "a", wantArg: `true`},
		{in: `["a\u002db"]`, wantName: "a-b", wantArg: `{}`},
		{in: `["` + long + `"]`, wantName: long, wantArg: `{}`},
		{in: `["` + long + `x"]`, wantErr: true},
		{in: `["` + strings.Repeat(`\u0061`, 65) + `"]`, wantErr: true},
		{in: `[]`, wantErr: true},
		{in: `[""]`, wantErr: true},
		{in: `[1,{}]`, wantErr: true},
		{in: `[null]`, wantErr: true},
		{in: `{"a":1}`, wantErr: true},
		{in: `"a"`, wantErr: true},
		{in: `["a",]`, wantErr: true},
		{in: `["a"`, wantErr: true},
		{in: ``, wantErr: true},
		{in: `["connect"]`, wantErr: true},
		{in: `["disconnect",{}]`, wantErr: true},
		{in: `["removeListener"]`, wantErr: true},
		{in: `["a\nb"]`, wantErr: true},
		{in: "[\"a\xffb\"]", wantErr: true},
	}
	for _, tt := range tests {
		name, arg, err := ParseEvent(json.RawMessage(tt.in))
		if tt.wantErr {
			if !errors.Is(err, ErrBadPayload) {
				t.Errorf("ParseEvent(%q) err = %v, want ErrBadPayload", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseEvent(%q) unexpected err %v", tt.in, err)
			continue
		}
		if name != tt.wantName || string(arg) != tt.wantArg {
			t.Errorf("ParseEvent(%q) = %q, %s; want %q, %s", tt.in, name, arg, tt.wantName, tt.wantArg)
		}
	}
}

// Byte-exact encodings, as produced by the reference server (engine.io 6 /
// socket.io 4).
func TestEncoders(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{string(AppendOpen(nil, "lv_VI97HAXpY6yYWAAAC", 25000, 20000, 1000000)),
			`0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`},
		{string(AppendPing(nil)), `2`},
		{string(AppendPong(nil, []byte("probe"))), `3probe`},
		{string(AppendEIOClose(nil)), `1`},
		{string(AppendConnect(nil, "oSO0OpakMV_3jnilAAAA")), `40{"sid":"oSO0OpakMV_3jnilAAAA"}`},
		{string(AppendConnectError(nil, "Not authorized")), `44{"message":"Not authorized"}`},
		{string(AppendConnectError(nil, "a \"quoted\"\\ <tag>\n\x01\u2028é\xff")), `44{"message":"a \"quoted\"\\ <tag>\n\u0001\u2028é\ufffd"}`},
		{string(AppendConnectErrorNsp(nil, "/admin", "Invalid namespace")), `44/admin,{"message":"Invalid namespace"}`},
		{string(AppendEvent(nil, "chat-message", json.RawMessage(`{"x":1}`))), `42["chat-message",{"x":1}]`},
		{string(AppendEvent(nil, "hello", nil)), `42["hello"]`},
		{string(AppendEvent(nil, `we"ird`, json.RawMessage(`1`))), `42["we\"ird",1]`},
		{string(AppendAck(nil, 17, json.RawMessage(`{"roomId":"r"}`))), `4317[{"roomId":"r"}]`},
		{string(AppendAck(nil, 0, nil)), `430[]`},
		{string(AppendDisconnect(nil)), `41`},
		{string(AppendSIO(nil, SIOPacket{Type: SIOEvent, Namespace: "/admin", AckID: 12, Data: json.RawMessage(`["a"]`)})), `42/admin,12["a"]`},
		{string(AppendSIO(nil, SIOPacket{Type: SIOBinaryEvent, Attachments: 1, Namespace: "/", AckID: -1, Data: json.RawMessage(`["a",{"_placeholder":true,"num":0}]`)})), `451-["a",{"_placeholder":true,"num":0}]`},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("#%d: got  %s\n         want %s", i, tt.got, tt.want)
		}
	}
	// Appending keeps what is already in dst.
	if got := string(AppendPing([]byte("x"))); got != "x2" {
		t.Errorf("append: %q", got)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\there", "\x00\x1f\x7f", "quote\"back\\slash", "日本語", "\u2028\u2029", "bad\xffutf8\xc3", "<>&"} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%q: invalid JSON %s: %v", s, got, err)
			continue
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: decodes to %q, encoding/json gives %q", s, back, wantBack)
		}
	}
}

func TestAppendEventFromNative(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: `{"event":"chat-message","data":{"message":{"id":"m_1","content":"}\"]"}}}`, want: `42["chat-message",{"message":{"id":"m_1","content":"}\"]"}}]`},
		{in: `{"event":"presence","data":{"userId":"u1"}}` + "\n", want: `42["presence",{"userId":"u1"}]`},
		{in: `{"event":"x","data":null}`, want: `42["x",null]`},
		{in: `{"event":"x","data":[1,2]}`, want: `42["x",[1,2]]`},
		{in: `{"event":"x","data":"s"}`, want: `42["x","s"]`},
		{in: `{"event":"x","data":12}`, want: `42["x",12]`},
		{in: `{"event":"we\"ird","data":{}}`, want: `42["we\"ird",{}]`},
		{in: `{"event":"x"}`, want: `42["x"]`},
		// slow path: other shapes
		{in: `{"data":{"a":1},"event":"x"}`, want: `42["x",{"a":1}]`},
		{in: `{ "event" : "x", "data" : {"a":1} }`, want: `42["x",{"a":1}]`},
		{in: `{"event":"x","data":1,"extra":2}`, want: `42["x",1]`},
		{in: `{"event":"x","data":{"a":1}}}`, wantErr: true},
		{in: `{"event":"ack","id":17,"data":{}}`, wantErr: true},
		{in: `{"data":{}}`, wantErr: true},
		{in: `{"event":""}`, wantErr: true},
		{in: `not json`, wantErr: true},
		{in: ``, wantErr: true},
	}
	for _, tt := range tests {
		got, err := AppendEventFromNative([]byte("pre"), []byte(tt.in))
		if tt.wantErr {
			if !errors.Is(err, ErrBadPayload) {
				t.Errorf("%q: err = %v, want ErrBadPayload", tt.in, err)
			}
			if string(got) != "pre" {
				t.Errorf("%q: dst modified on error: %q", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: unexpected err %v", tt.in, err)
			continue
		}
		if string(got) != "pre"+tt.want {
			t.Errorf("%q: got %s, want %s", tt.in, got[3:], tt.want)
		}
	}
}

func TestNewSID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s := NewSID()
		if len(s) != SIDLen {
			t.Fatalf("len(%q) = %d", s, len(s))
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				t.Fatalf("%q: not base64url", s)
			}
		}
		if seen[s] {
			t.Fatalf("duplicate sid %q", s)
		}
		seen[s] = true
	}
}

func TestEncodersZeroAlloc(t *testing.T) {
	buf := make([]byte, 0, 512)
	data := json.RawMessage(`{"roomId":"room-123","content":"hello"}`)
	native := []byte(`{"event":"chat-message","data":{"roomId":"room-123","content":"hello"}}`)
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendEvent(buf[:0], "chat-message", data)
		b = AppendAck(b[:0], 17, data)
		b = AppendOpen(b[:0], "lv_VI97HAXpY6yYWAAAC", 25000, 20000, 1000000)
		b = AppendConnect(b[:0], "lv_VI97HAXpY6yYWAAAC")
		b = AppendConnectError(b[:0], "bad \"token\"")
		b = AppendPing(b[:0])
		b = AppendDisconnect(b[:0])
		b, _ = AppendEventFromNative(b[:0], native)
		_ = b
	})
	if allocs != 0 {
		t.Fatalf("encoders allocate: %v allocs/run", allocs)
	}
}

func TestAppendConnectPIDAndEventOffset(t *testing.T) {
	if got := string(AppendConnectPID(nil, "s1", "p\"1")); got != `40{"sid":"s1","pid":"p\"1"}` {
		t.Fatalf("connect pid: %s", got)
	}
	if got := string(AppendEventOffset(nil, "chat-message", json.RawMessage(`{"a":1}`), "7:r1")); got != `42["chat-message",{"a":1},"7:r1"]` {
		t.Fatalf("event offset: %s", got)
	}
	s := NewSession(nil)
	s.SocketID, s.PID = "x", "y"
	if got := string(s.Accept(nil)); got != `40{"sid":"x","pid":"y"}` {
		t.Fatalf("accept: %s", got)
	}
}
