package rules

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// fold returns s after NFKC (full-width forms, ligatures, super- and subscripts
// to their plain letters), Unicode case folding and accent stripping (NFD, drop
// non-spacing marks, NFC). Personal-data patterns run on this form: digits kept.
func fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii { // NFKC, folding and accent stripping of ASCII is ASCII lower case
		return strings.ToLower(s)
	}
	t := folders.Get().(transform.Transformer)
	defer folders.Put(t)
	t.Reset()
	out, _, err := transform.String(t, s)
	if err != nil {
		return strings.ToLower(s)
	}
	return out
}

// folders pools the folding chains: a chain holds buffers for each step and
// is not safe for concurrent use.
var folders = sync.Pool{New: func() any {
	return transform.Chain(norm.NFKC, cases.Fold(), norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}}

// lookalike maps letters of other scripts that look like Latin ones (Cyrillic,
// Greek) to the Latin letter, and "l" to "i" (they are told apart by nobody
// reading "1", "l", "I" or "|"). Applied to the terms as well as the text.
var lookalike = map[rune]rune{
	// Cyrillic
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c',
	'т': 't', 'у': 'y', 'х': 'x', 'і': 'i', 'ї': 'i', 'ј': 'j', 'ѕ': 's', 'ԁ': 'd', 'һ': 'h', 'ԛ': 'q', 'ԝ': 'w',
	// Greek
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't',
	'υ': 'u', 'χ': 'x', 'γ': 'y', 'ω': 'w', 'μ': 'u', 'ς': 's', 'σ': 'o',
	// Latin confusables
	'l': 'i', 'ı': 'i', 'ł': 'i', 'ß': 's', 'ø': 'o', 'đ': 'd', 'ħ': 'h',
}

// leet maps digits and symbols written for letters. They count as letters only
// inside a word that has a real letter (digits) or before a letter (symbols),
// so "455" or "hello!" stay what they are.
var leetDigit = map[rune]rune{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '8': 'b'}
var leetSymbol = map[rune]rune{'@': 'a', '$': 's', '!': 'i', '|': 'i', '€': 'e', '£': 'e'}

// words splits the folded text into skeleton words: look-alikes and leet mapped,
// apostrophes inside words dropped ("don't" is "dont"), everything else that is
// not a letter separates words.
func words(folded string) []string {
	rs := []rune(folded)
	isLetter := func(i int) bool { return i < len(rs) && unicode.IsLetter(rs[i]) }
	var out []string
	var cur []rune
	real := false
	flush := func() {
		if len(cur) > 0 && real {
			out = append(out, string(cur))
		}
		cur, real = cur[:0], false
	}
	for i, r := range rs {
		switch {
		case unicode.IsLetter(r):
			if m, ok := lookalike[r]; ok {
				r = m
			}
			cur, real = append(cur, r), true
		case leetDigit[r] != 0:
			cur = append(cur, leetDigit[r])
		case leetSymbol[r] != 0 && (isLetter(i+1) || (i+1 < len(rs) && leetDigit[rs[i+1]] != 0)):
			cur = append(cur, leetSymbol[r])
		case (r == '\'' || r == '’') && len(cur) > 0 && isLetter(i+1):
			// inside a word: skip
		default:
			flush()
		}
	}
	flush()
	return out
}

// squash joins runs of two or more one-letter words: "k i l l" and "k.i.l.l"
// become "kiii". Other words are kept.
func squash(ws []string) []string {
	out := make([]string, 0, len(ws))
	for i := 0; i < len(ws); {
		j := i
		for j < len(ws) && len([]rune(ws[j])) == 1 {
			j++
		}
		if j-i >= 2 {
			out = append(out, strings.Join(ws[i:j], ""))
			i = j
			continue
		}
		out = append(out, ws[i])
		i++
	}
	return out
}

// collapse shortens every run of a repeated letter to one ("fuuuck" to "fuck",
// "kiiii" to "ki"); stretched reports whether some run had three or more.
func collapse(w string) (c string, stretched bool) {
	var b strings.Builder
	var prev rune
	n := 0
	for _, r := range w {
		if r == prev {
			n++
			if n >= 3 {
				stretched = true
			}
			continue
		}
		prev, n = r, 1
		b.WriteRune(r)
	}
	return b.String(), stretched
}
