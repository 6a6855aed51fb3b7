package sio

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func FuzzParseEIO(f *testing.F) {
	for _, s := range []string{"", "0{}", "1", "2", "2probe", "3", "42[\"a\"]", "5", "6", "7", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := ParseEIO(frame)
		if err != nil {
			if !IsProtocolError(err) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if p.Type > EIONoop {
			t.Fatalf("type %d", p.Type)
		}
		if got := AppendEIO(nil, p); !bytes.Equal(got, frame) {
			t.Fatalf("re-encoded %q as %q", frame, got)
		}
	})
}

func FuzzParseSIO(f *testing.F) {
	for _, s := range []string{
		`0`, `0{"token":"t"}`, `0/admin,{}`, `1`, `2["a",{"b":1}]`, `217["a"]`,
		`317[{}]`, `4{"message":"m"}`, `51-["a",{"_placeholder":true,"num":0}]`,
		`2/x,0["a",1,2]`, `2999999999999999["a"]`, `207["a"]`, `2["a"`, `8`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseSIO(data)
		if err != nil {
			if !IsProtocolError(err) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if p.AckID < -1 || p.Type < 0 || p.Type > SIOConnectError || p.Namespace == "" || p.Namespace[0] != '/' {
			t.Fatalf("accepted odd packet %+v", p)
		}
		if p.Data != nil && !json.Valid(p.Data) {
			t.Fatalf("accepted invalid JSON %q", p.Data)
		}
		enc := AppendSIO(nil, p)
		p2, err := ParseSIO(enc[1:])
		if err != nil {
			t.Fatalf("re-encoded %q as %q which fails: %v", data, enc, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip %q → %q: %+v != %+v", data, enc, p, p2)
		}
		if p.Type == SIOEvent {
			checkEvent(t, p.Data)
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`["a"]`, `["a",{"b":1}]`, `["a",null]`, `[ "a" , [1,{"]":"["}] , 2 ]`,
		`["a\u0062"]`, `["connect"]`, `[1]`, `[]`, `{}`, `["a",]`, `["a"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkEvent(t, data)
	})
}

// checkEvent checks ParseEvent against encoding/json and that an accepted
// event re-encodes to the same name and argument.
func checkEvent(t *testing.T, data []byte) {
	name, arg, err := ParseEvent(data)
	if err != nil {
		if !errors.Is(err, ErrBadPayload) {
			t.Fatalf("ParseEvent(%q): unclassified error %v", data, err)
		}
		return
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil || len(elems) == 0 {
		t.Fatalf("ParseEvent accepted %q that encoding/json refuses: %v", data, err)
	}
	var refName string
	if err := json.Unmarshal(elems[0], &refName); err != nil || refName != name {
		t.Fatalf("ParseEvent(%q) name %q, encoding/json %q (%v)", data, name, refName, err)
	}
	wantArg := "{}"
	if len(elems) > 1 && string(bytes.TrimSpace(elems[1])) != "null" {
		wantArg = string(bytes.TrimSpace(elems[1]))
	}
	if string(arg) != wantArg {
		t.Fatalf("ParseEvent(%q) arg %q, encoding/json %q", data, arg, wantArg)
	}
	enc := AppendEvent(nil, name, arg)
	p, err := ParseSIO(enc[1:])
	if err != nil {
		t.Fatalf("re-encoded event %q fails: %v", enc, err)
	}
	name2, arg2, err := ParseEvent(p.Data)
	if err != nil || name2 != name || !bytes.Equal(arg2, arg) {
		t.Fatalf("round trip %q → %q: %q %q %v", data, enc, name2, arg2, err)
	}
}

func FuzzAppendEventFromNative(f *testing.F) {
	for _, s := range []string{
		`{"event":"a","data":{"b":1}}`, `{"event":"a"}`, `{"event":"a\"b","data":"}"}`,
		`{"data":1,"event":"a"}`, `{"event":"a","data":1,"id":2}`, `{"event":"a","data":{}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, native []byte) {
		got, err := AppendEventFromNative(nil, native)
		slow, slowErr := appendEventFromNativeSlow(nil, native)
		if !json.Valid(native) {
			return // outside the contract: only require no panic
		}
		if (err == nil) != (slowErr == nil) {
			t.Fatalf("%q: fast err %v, slow err %v", native, err, slowErr)
		}
		if err != nil {
			return
		}
		if !sameJSON(t, got[2:], slow[2:]) {
			t.Fatalf("%q: fast %q, slow %q", native, got, slow)
		}
	})
}

func sameJSON(t *testing.T, a, b []byte) bool {
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}
