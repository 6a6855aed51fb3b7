package sio

import (
	"encoding/json"
	"testing"
)

var benchData = json.RawMessage(`{"message":{"id":"m_01HZX","roomId":"room-123","seq":42,"senderId":"u1","senderName":"Teacher Name","type":"text","content":"Hello!","clientMsgId":"7f1c","createdAt":"2026-11-25T10:00:00.000Z","editedAt":null,"deleted":false}}`)

func BenchmarkAppendEvent(b *testing.B) {
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchData)))
	for i := 0; i < b.N; i++ {
		buf = AppendEvent(buf[:0], "chat-message", benchData)
	}
}

func BenchmarkAppendAck(b *testing.B) {
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendAck(buf[:0], 17, benchData)
	}
}

func BenchmarkAppendEventFromNative(b *testing.B) {
	native := []byte(`{"event":"chat-message","data":` + string(benchData) + `}`)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(native)))
	for i := 0; i < b.N; i++ {
		var err error
		buf, err = AppendEventFromNative(buf[:0], native)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSIO(b *testing.B) {
	frame := []byte(`17["send-chat-message",{"roomId":"room-123","content":"Hello there, this is a message","clientMsgId":"7f1c-aa"}]`)
	frame = append([]byte{'2'}, frame...)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		if _, err := ParseSIO(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSessionHandleEvent(b *testing.B) {
	s := NewSession(nil)
	s.Handle([]byte("40"), nil)
	s.Accept(nil)
	frame := []byte(`4217["send-chat-message",{"roomId":"room-123","content":"Hello there, this is a message","clientMsgId":"7f1c-aa"}]`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for i := 0; i < b.N; i++ {
		in, err := s.Handle(frame, nil)
		if err != nil || in.Kind != KindEvent {
			b.Fatal(in, err)
		}
	}
}
