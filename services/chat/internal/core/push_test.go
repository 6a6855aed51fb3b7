package core

import (
	"slices"
	"strings"
	"testing"
)

func TestMentions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		text string
		want []string
	}{
		{"hi @bob", []string{"bob"}},
		{"@alice: see @bob.", []string{"alice", "bob"}},
		{"mail a@b.example is not a mention", nil},
		{"(@t-1) and @t-1 again", []string{"t-1"}},
		{"@ alone", nil},
		{"@u:1@x-", []string{"u:1@x"}},
		{"@" + strings.Repeat("a", 200), nil},
		{strings.Repeat("@u ", 5) + "@v", []string{"u", "v"}},
	}
	for _, c := range cases {
		if got := Mentions(c.text); !slices.Equal(got, c.want) {
			t.Errorf("Mentions(%q) = %q, want %q", c.text, got, c.want)
		}
	}
	var many strings.Builder
	for i := range 50 {
		many.WriteString(" @u" + strings.Repeat("x", i))
	}
	if n := len(Mentions(many.String())); n != maxMentions {
		t.Errorf("%d mentions, want at most %d", n, maxMentions)
	}
}
