package rules

// Defaults is the built-in rule set a school starts with (replaced as a whole
// through SafeguardingService.SetContentRules). The lists are deliberately short
// and whole-word: a school adds its own words; a word that is also an ordinary
// word in lessons ("dick" in Moby Dick, "suicide" in Romeo and Juliet) is left
// out or only matched in a phrase.
func Defaults() []Rule {
	return []Rule{
		{
			ID: "profanity", Category: CategoryProfanity, Action: ActionReject,
			PublicReason: "Please keep your language appropriate for school.",
			Words: []string{
				"fuck*", "motherfuck*", "shit", "shits", "shitty", "shithead", "bullshit", "bitch", "bitches",
				"bastard", "cunt", "dickhead", "wanker", "wank", "twat", "slut", "whore", "asshole", "arsehole",
				"bollocks", "piss off", "pissed off", "faggot", "retard", "retarded", "stfu",
			},
		},
		{
			ID: "self-harm", Category: CategorySelfHarm, Action: ActionFlag,
			Words: []string{
				"kill myself", "killing myself", "want to die", "wanna die", "end my life", "ending my life",
				"commit suicide", "suicidal", "self harm", "self harming", "cut myself", "cutting myself",
				"hurt myself", "hurting myself", "hang myself", "better off dead", "no reason to live",
				"dont want to live", "dont want to be alive", "take my own life",
			},
		},
		{
			ID: "grooming", Category: CategoryGrooming, Action: ActionHold,
			Words: []string{
				"our little secret", "our secret", "dont tell your parents", "dont tell your mum", "dont tell your mom",
				"dont tell your dad", "dont tell your teacher", "delete this chat", "delete these messages",
				"delete our messages", "are you alone", "are you home alone", "send me a photo", "send me a pic",
				"send me pics", "send nudes", "what are you wearing", "come alone", "meet me alone",
				"add me on snap", "add me on snapchat", "whats your address", "where do you live",
			},
		},
		{
			ID: "personal-data", Category: CategoryPersonalData, Action: ActionReject,
			PublicReason: "Please don't share phone numbers, email addresses or home addresses in chat.",
			SenderRoles:  []string{"student"},
			Patterns: []string{
				// e-mail addresses
				`[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}`,
				// phone numbers: 10 to 15 digits with at most two separators between them
				`(^|[^\d])\+?(\d[ \-.()]{0,2}){9,14}\d([^\d]|$)`,
				// UK postcodes; the inward code is never an ordinal (Y7 2nd, S6 4th)
				`\b[a-z]{1,2}\d[a-z\d]?\s*\d([abd-hjlpquw-z][abd-hjlnp-uw-z]|s[abd-hjlnp-su-z]|n[abe-hjlnp-uw-z]|r[abe-hjlnp-uw-z]|t[abd-gjlnp-uw-z])\b`,
				// a house number and a street
				`\b\d{1,4}[a-z]?\s+([a-z]+\s+){1,2}(street|road|avenue|lane|drive|crescent|terrace|gardens|grove)\b`,
			},
		},
	}
}
