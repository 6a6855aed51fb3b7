// Package reach holds who may be reached how and when: per-user preferences per
// channel and category, school-wide defaults, the school calendar (terms and
// holidays), quiet hours, the contact directory used by email digests, and the Gate
// that Web Push and email ask before sending (docs/notifications-admin.md,
// docs/protocol.md "Preferences").
//
// Storage: one document per user in `reach_users` (_id = user id) holding both what
// the user chose (`prefs`) and what the school set (`contact`), written with $set on
// disjoint fields so the two writers never overwrite each other; one document per
// school in `reach_schools` (_id = school id). Every read is a point read by _id.
// Category names contain dots, so channel settings are stored as arrays of
// {channel, category, enabled} entries, never as document keys.
package reach
