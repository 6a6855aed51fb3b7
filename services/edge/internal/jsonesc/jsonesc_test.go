package jsonesc

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"plain", "hello", `"hello"`},
		{"quote and backslash", `a"b\c`, `"a\"b\\c"`},
		{"newline return tab", "a\nb\rc\td", `"a\nb\rc\td"`},
		{"backspace", "a\bb", `"a\bb"`},
		{"form feed", "a\fb", `"a\fb"`},
		{"other controls", "\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"DEL is not escaped", "\x7f", "\"\x7f\""},
		{"line separator", "a\u2028b", `"a\u2028b"`},
		{"paragraph separator", "a\u2029b", `"a\u2029b"`},
		{"html left alone", "<a&b>", `"<a&b>"`},
		{"multibyte", "héllo 世界 🙂", `"héllo 世界 🙂"`},
		{"invalid utf8", "a\xffb", `"a\ufffdb"`},
		{"truncated rune", "a\xe4\xb8", `"a\ufffd\ufffd"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendString(nil, tc.in))
			if got != tc.want {
				t.Fatalf("AppendString(%q) = %s, want %s", tc.in, got, tc.want)
			}
			checkRoundTrip(t, tc.in)
		})
	}
}

func TestAppendStringAppends(t *testing.T) {
	got := string(AppendString([]byte("x="), "y"))
	if got != `x="y"` {
		t.Fatalf("got %s", got)
	}
}

func TestAppendStringNoAlloc(t *testing.T) {
	buf := make([]byte, 0, 256)
	s := strings.Repeat("a\"\n\u2028é", 8)
	if n := testing.AllocsPerRun(100, func() { _ = AppendString(buf[:0], s) }); n != 0 {
		t.Fatalf("AppendString allocated %.0f times with room in dst", n)
	}
}

// checkRoundTrip checks that the output is valid JSON, decodes (with encoding/json)
// to s with invalid UTF-8 replaced, and contains no raw control character or
// U+2028/9.
func checkRoundTrip(t *testing.T, s string) {
	t.Helper()
	out := AppendString(nil, s)
	if !json.Valid(out) {
		t.Fatalf("AppendString(%q) = %s: not valid JSON", s, out)
	}
	var back string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if want := strings.ToValidUTF8(s, "\uFFFD"); back != want && back != replaceEachInvalidByte(s) {
		t.Fatalf("round trip of %q gave %q", s, back)
	}
	for _, r := range string(out) {
		if r < 0x20 || r == '\u2028' || r == '\u2029' {
			t.Fatalf("AppendString(%q) = %q: raw %U in output", s, out, r)
		}
	}
}

// replaceEachInvalidByte is what encoding/json does: one U+FFFD per invalid byte.
func replaceEachInvalidByte(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// FuzzAppendString checks AppendString against encoding/json: the output always
// decodes back to the input (invalid bytes as U+FFFD), and for valid UTF-8 it
// decodes to the same string encoding/json's own encoding decodes to.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\b\f\n\r\t\x00\x1f", "\u2028\u2029", "\xff", `"\`, "é世🙂", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkRoundTrip(t, s)
		if utf8.ValidString(s) {
			ref, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			var a, b string
			if err := json.Unmarshal(ref, &a); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(AppendString(nil, s), &b); err != nil {
				t.Fatal(err)
			}
			if a != b {
				t.Fatalf("encoding/json round trip %q, ours %q", a, b)
			}
		}
	})
}
