package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Categories of content rules (docs/protocol.md "Safeguarding").
const (
	CategoryProfanity    = "profanity"
	CategorySelfHarm     = "self_harm"
	CategoryGrooming     = "grooming"
	CategoryPersonalData = "personal_data"
)

// Actions, weakest first. A message matching several rules gets the strongest.
const (
	ActionFlag   = "flag"   // delivered; a report is raised for the safeguarding leads
	ActionHold   = "hold"   // stored, delivered to nobody until a lead releases it
	ActionReject = "reject" // refused with the rule's public reason; nothing stored
)

var (
	categories = []string{CategoryProfanity, CategorySelfHarm, CategoryGrooming, CategoryPersonalData}
	actions    = []string{ActionFlag, ActionHold, ActionReject}
)

// Limits on a rule set.
const (
	MaxRules        = 200
	MaxTermsPerRule = 2000
	MaxTermLen      = 100
	MaxPatterns     = 20
	MaxPatternLen   = 300
)

// Rule is one configurable content rule.
type Rule struct {
	ID       string `json:"id" bson:"id"`
	Category string `json:"category" bson:"category"`
	Action   string `json:"action" bson:"action"`
	// Words are whole words or phrases, matched after normalisation (Normalize);
	// a trailing "*" matches any word starting with the term ("swear*").
	Words []string `json:"words,omitempty" bson:"words,omitempty"`
	// Patterns are RE2 expressions matched against the folded text (NFKC, case
	// folded, accents stripped; digits and punctuation kept).
	Patterns []string `json:"patterns,omitempty" bson:"patterns,omitempty"`
	// PublicReason is what the sender is told when the rule rejects a message.
	PublicReason string `json:"publicReason" bson:"publicReason"`
	// SenderRoles limits the rule to senders whose token has one of these roles
	// (empty: every sender).
	SenderRoles []string `json:"senderRoles,omitempty" bson:"senderRoles,omitempty"`
}

// Match is one rule a text matched.
type Match struct {
	RuleID       string `json:"ruleId"`
	Category     string `json:"category"`
	Action       string `json:"action"`
	PublicReason string `json:"publicReason,omitempty"`
}

type term struct {
	rule   int
	words  []string // skeleton words
	prefix bool     // last word is a prefix
}

// Matcher matches texts against a compiled rule set. Safe for concurrent use.
type Matcher struct {
	rules    []Rule
	byFirst  map[string][]term // skeleton first word (and its collapsed form) to terms
	prefixes []term
	patterns []*regexp.Regexp
	patRule  []int
}

// ErrInvalid is returned by Compile for a rule set that cannot be used.
var ErrInvalid = errors.New("invalid content rules")

// Compile checks rs and builds its matcher.
func Compile(rs []Rule) (*Matcher, error) {
	if len(rs) > MaxRules {
		return nil, fmt.Errorf("%w: at most %d rules", ErrInvalid, MaxRules)
	}
	m := &Matcher{rules: slices.Clone(rs), byFirst: map[string][]term{}}
	seen := map[string]bool{}
	for i, r := range rs {
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: rule %d (%q): %s", ErrInvalid, i, r.ID, fmt.Sprintf(format, a...))
		}
		switch {
		case r.ID == "" || len(r.ID) > 64:
			return nil, bad("id must be 1..64 characters")
		case seen[r.ID]:
			return nil, bad("duplicate id")
		case !slices.Contains(categories, r.Category):
			return nil, bad("category must be one of %v", categories)
		case !slices.Contains(actions, r.Action):
			return nil, bad("action must be one of %v", actions)
		case len(r.Words) == 0 && len(r.Patterns) == 0:
			return nil, bad("give words or patterns")
		case len(r.Words) > MaxTermsPerRule || len(r.Patterns) > MaxPatterns:
			return nil, bad("at most %d words and %d patterns", MaxTermsPerRule, MaxPatterns)
		case r.Action == ActionReject && strings.TrimSpace(r.PublicReason) == "":
			return nil, bad("a reject rule needs a publicReason")
		case len(r.PublicReason) > 200:
			return nil, bad("publicReason is at most 200 characters")
		}
		seen[r.ID] = true
		for _, w := range r.Words {
			if w == "" || len(w) > MaxTermLen {
				return nil, bad("words must be 1..%d bytes", MaxTermLen)
			}
			prefix := strings.HasSuffix(w, "*")
			ws := words(fold(strings.TrimSuffix(w, "*")))
			if len(ws) == 0 {
				return nil, bad("word %q has no letters", w)
			}
			if prefix && len(ws) > 1 {
				return nil, bad("a prefix term (%q) is one word", w)
			}
			t := term{rule: i, words: ws, prefix: prefix}
			if prefix {
				m.prefixes = append(m.prefixes, t)
				continue
			}
			m.add(ws[0], t)
			if c, _ := collapse(ws[0]); c != ws[0] {
				m.add(c, t)
			}
			if len(ws) > 1 { // the phrase written without spaces, or squashed
				joined := strings.Join(ws, "")
				m.add(joined, term{rule: i, words: []string{joined}})
			}
		}
		for _, p := range r.Patterns {
			if len(p) > MaxPatternLen {
				return nil, bad("patterns are at most %d bytes", MaxPatternLen)
			}
			re, err := regexp.Compile(p)
			if err != nil {
				return nil, bad("pattern %q: %v", p, err)
			}
			m.patterns, m.patRule = append(m.patterns, re), append(m.patRule, i)
		}
	}
	return m, nil
}

func (m *Matcher) add(key string, t term) {
	if !slices.ContainsFunc(m.byFirst[key], func(o term) bool { return o.rule == t.rule && slices.Equal(o.words, t.words) }) {
		m.byFirst[key] = append(m.byFirst[key], t)
	}
}

// Rules returns the rule set the matcher was compiled from.
func (m *Matcher) Rules() []Rule { return slices.Clone(m.rules) }

// Match returns the rules text matches for a sender with roles, one Match per
// rule, in rule order.
func (m *Matcher) Match(text string, roles []string) []Match {
	if m == nil || len(m.rules) == 0 {
		return nil
	}
	folded := fold(text)
	hit := make([]bool, len(m.rules))
	ws := words(folded)
	m.matchWords(ws, hit)
	if sq := squash(ws); len(sq) != len(ws) {
		m.matchWords(sq, hit)
	}
	for i, re := range m.patterns {
		if !hit[m.patRule[i]] && re.MatchString(folded) {
			hit[m.patRule[i]] = true
		}
	}
	var out []Match
	for i, h := range hit {
		r := m.rules[i]
		if h && (len(r.SenderRoles) == 0 || slices.ContainsFunc(roles, func(x string) bool { return slices.Contains(r.SenderRoles, x) })) {
			out = append(out, Match{RuleID: r.ID, Category: r.Category, Action: r.Action, PublicReason: r.PublicReason})
		}
	}
	return out
}

func (m *Matcher) matchWords(ws []string, hit []bool) {
	for i, w := range ws {
		c, stretched := collapse(w)
		m.matchAt(ws, i, m.byFirst[w], hit)
		if stretched && c != w {
			m.matchAt(ws, i, m.byFirst[c], hit)
		}
		for _, t := range m.prefixes {
			if !hit[t.rule] && (strings.HasPrefix(w, t.words[0]) || (stretched && strings.HasPrefix(c, collapseOf(t.words[0])))) {
				hit[t.rule] = true
			}
		}
	}
}

func (m *Matcher) matchAt(ws []string, i int, ts []term, hit []bool) {
	for _, t := range ts {
		if hit[t.rule] || i+len(t.words) > len(ws) {
			continue
		}
		ok := true
		for k, tw := range t.words {
			w := ws[i+k]
			if w != tw {
				if c, stretched := collapse(w); !stretched || c != collapseOf(tw) {
					ok = false
					break
				}
			}
		}
		if ok {
			hit[t.rule] = true
		}
	}
}

func collapseOf(w string) string { c, _ := collapse(w); return c }

// Strongest returns the strongest action of ms ("" for none) and the match
// carrying it (the first such).
func Strongest(ms []Match) (string, Match) {
	best, at := -1, Match{}
	for _, x := range ms {
		if i := slices.Index(actions, x.Action); i > best {
			best, at = i, x
		}
	}
	if best < 0 {
		return "", Match{}
	}
	return actions[best], at
}

// Normalize is the word form texts and terms are compared in, joined by
// spaces (for tests and for showing what a rule sees).
func Normalize(text string) string { return strings.Join(words(fold(text)), " ") }
