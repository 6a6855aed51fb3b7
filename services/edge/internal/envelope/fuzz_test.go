package envelope

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeEnvelope checks that Decode never panics, that whatever it accepts is
// valid JSON that encoding/json reads the same way, and that echoing the id and data
// into an ack yields valid JSON. Seed corpus: testdata/fuzz/FuzzDecodeEnvelope.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		env, derr := Decode(msg)
		if derr != nil {
			if derr.ID != nil && !validID(derr.ID) {
				t.Fatalf("error carries invalid id %q", derr.ID)
			}
			return
		}
		if !json.Valid(msg) {
			t.Fatalf("accepted invalid JSON %q", msg)
		}
		// A map decodes keys exactly (encoding/json's struct matching is
		// case-insensitive, which the protocol is not).
		var std map[string]json.RawMessage
		if err := json.Unmarshal(msg, &std); err != nil {
			t.Fatalf("stdlib rejects accepted %q: %v", msg, err)
		}
		var event string
		if err := json.Unmarshal(std["event"], &event); err != nil || event != string(env.Event) {
			t.Fatalf("event %q, stdlib %q (%v)", env.Event, event, err)
		}
		if d := std["data"]; len(d) > 0 && string(d) != "null" && !bytes.Equal(d, env.Data) {
			t.Fatalf("data %q, stdlib %q", env.Data, d)
		}
		if env.ID.Present() && !bytes.Equal(std["id"], env.ID) {
			t.Fatalf("id %q, stdlib %q", env.ID, std["id"])
		}
		ack := AppendAck(nil, env.ID, env.Data)
		if !json.Valid(ack) {
			t.Fatalf("ack is invalid JSON: %q", ack)
		}
	})
}
