package envelope

import (
	"encoding/json"
	"strings"
	"testing"
)

var decodeCases = []struct {
	name, in      string
	event, data   string
	id, errReason string
}{
	{name: "minimal", in: `{"event":"ping"}`, event: "ping", data: "{}"},
	{name: "full int id", in: `{"event":"send-chat-message","data":{"roomId":"r1","content":"hi \u00e9"},"id":17}`, event: "send-chat-message", data: `{"roomId":"r1","content":"hi \u00e9"}`, id: "17"},
	{name: "string id", in: ` { "id" : "abc" , "event" : "ping" , "data" : { } } `, event: "ping", data: "{ }", id: `"abc"`},
	{name: "null data", in: `{"event":"ping","data":null}`, event: "ping", data: "{}"},
	{name: "unknown key ignored", in: `{"event":"ping","v":[1,{"a":null}]}`, event: "ping", data: "{}"},
	{name: "negative id", in: `{"event":"ping","id":-3}`, event: "ping", data: "{}", id: "-3"},
	{name: "missing event", in: `{"data":{}}`, errReason: "event is required"},
	{name: "uppercase event", in: `{"event":"Ping","id":1}`, errReason: "event must be", id: "1"},
	{name: "long event", in: `{"event":"` + strings.Repeat("a", 65) + `"}`, errReason: "event must be"},
	{name: "event not string", in: `{"event":5}`, errReason: "event must be a string"},
	{name: "data array", in: `{"event":"ping","data":[],"id":"x"}`, errReason: "data must be an object", id: `"x"`},
	{name: "float id", in: `{"event":"ping","id":1.5}`, errReason: "id must be"},
	{name: "long string id", in: `{"event":"ping","id":"` + strings.Repeat("a", 65) + `"}`, errReason: "id must be"},
	{name: "bool id", in: `{"event":"ping","id":true}`, errReason: "id must be"},
	{name: "duplicate event", in: `{"event":"ping","event":"ping"}`, errReason: "duplicate"},
	{name: "trailing", in: `{"event":"ping"}x`, errReason: "trailing"},
	{name: "truncated", in: `{"event":"ping","data":{"a":`, errReason: "malformed"},
	{name: "bad escape", in: `{"event":"ping","data":{"a":"\x"}}`, errReason: "malformed"},
	{name: "control char", in: "{\"event\":\"ping\",\"data\":{\"a\":\"\x01\"}}", errReason: "malformed"},
	{name: "array", in: `[]`, errReason: "must be a JSON object"},
	{name: "empty", in: ``, errReason: "must be a JSON object"},
	{name: "leading zero", in: `{"event":"ping","data":{"a":01}}`, errReason: "malformed"},
	{name: "deep", in: `{"event":"ping","data":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100) + `}`, errReason: "malformed"},
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			env, err := Decode([]byte(tc.in))
			if tc.errReason != "" {
				if err == nil || !strings.Contains(err.Reason, tc.errReason) {
					t.Fatalf("err = %v, want %q", err, tc.errReason)
				}
				if string(err.ID) != tc.id {
					t.Fatalf("err id = %q, want %q", err.ID, tc.id)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected %v", err)
			}
			if string(env.Event) != tc.event || string(env.Data) != tc.data || string(env.ID) != tc.id {
				t.Fatalf("got %q %q %q", env.Event, env.Data, env.ID)
			}
		})
	}
}

func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{string(AppendEvent(nil, "connected", []byte(`{"a":1}`))), `{"event":"connected","data":{"a":1}}`},
		{string(AppendEvent(nil, "x", nil)), `{"event":"x","data":{}}`},
		{string(AppendAck(nil, ID("17"), []byte(`{}`))), `{"event":"ack","id":17,"data":{}}`},
		{string(AppendAck(nil, ID(`"a\"b"`), nil)), `{"event":"ack","id":"a\"b","data":{}}`},
		{string(AppendError(nil, ID(`"q"`), "rate_limited", "slow \"down\"\n", 250)), `{"event":"error","id":"q","data":{"code":"rate_limited","message":"slow \"down\"\n","retryAfterMs":250}}`},
		{string(AppendError(nil, nil, "bad_request", "bad\x01\xff", 0)), `{"event":"error","data":{"code":"bad_request","message":"bad\u0001\ufffd"}}`},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %s\nwant %s", tc.got, tc.want)
		}
		if !json.Valid([]byte(tc.got)) {
			t.Errorf("invalid JSON %s", tc.got)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	msg := []byte(`{"event":"send-chat-message","data":{"roomId":"room-123","content":"Hello, how is everybody doing today?","clientMsgId":"7f1c2d3e-aaaa-bbbb-cccc-0123456789ab"},"id":1234}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStdlib(b *testing.B) {
	msg := []byte(`{"event":"send-chat-message","data":{"roomId":"room-123","content":"Hello, how is everybody doing today?","clientMsgId":"7f1c2d3e-aaaa-bbbb-cccc-0123456789ab"},"id":1234}`)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		var v struct {
			Event string          `json:"event"`
			Data  json.RawMessage `json:"data"`
			ID    json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(msg, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	data := []byte(`{"message":{"id":"m_1","roomId":"room-123","seq":42,"senderId":"u1","content":"Hello!"}}`)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], "chat-message", data)
	}
}

func BenchmarkAppendError(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendError(buf[:0], ID("17"), "rate_limited", "too many commands", 250)
	}
}
