package subject

import (
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"u1", "u1"},
		{"665f1c2e9b1e8a0012345678", "665f1c2e9b1e8a0012345678"},
		{"svc:grades", "svc:grades"},
		{"a.b", "~YS5i"},
		{"*", "~Kg"},
		{">", "~Pg"},
		{"with space", "~d2l0aCBzcGFjZQ"},
	}
	for _, c := range cases {
		if got := Token(c.in); got != c.want {
			t.Errorf("Token(%q) = %q, want %q", c.in, got, c.want)
		}
		if strings.ContainsAny(Token(c.in), ".*> ") {
			t.Errorf("Token(%q) = %q contains a subject metacharacter", c.in, Token(c.in))
		}
	}
	if Token("a.b") == Token("a_b") {
		t.Fatal("distinct ids must give distinct tokens")
	}
}

func TestCommand(t *testing.T) {
	t.Parallel()
	s := Command("chat", "send-chat-message")
	if s != "talim.cmd.v1.chat.send-chat-message" {
		t.Fatalf("got %q", s)
	}
	if EventFromCommand("chat", s) != "send-chat-message" {
		t.Fatal("EventFromCommand")
	}
}
