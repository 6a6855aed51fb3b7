// Package rules matches chat messages against a school's content rules
// (docs/protocol.md "Safeguarding"): word and phrase lists and RE2 patterns,
// each with a category and an action (flag, hold, reject).
//
// Words are compared whole, after the text is normalised: NFKC, Unicode case
// folding, accents stripped, Cyrillic and Greek look-alikes and leet digits and
// symbols mapped to Latin letters, apostrophes inside words dropped, single
// letters separated by spaces or punctuation joined ("k.i.l.l"), and letters
// stretched three times or more collapsed ("fuuuck"). Whole-word matching is
// what keeps "Scunthorpe", "grape" and "therapist" clean. Patterns (personal
// data) see the folded text with digits and punctuation kept.
package rules
