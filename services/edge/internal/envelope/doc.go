// Package envelope decodes and encodes the native protocol's JSON envelope
// (docs/protocol.md "Frames") without encoding/json on the hot path.
//
// Decode is strict: the top level must be one JSON object with a string "event"
// (1..64 characters of [a-z0-9-]), an optional object "data" (absent means {}) and an
// optional "id" that is an integer or a string of at most 64 characters. Unknown
// top-level keys are accepted and ignored (forward compatibility); duplicate known
// keys, trailing bytes and invalid JSON anywhere (including inside data) are refused.
//
// The slices Decode returns alias the input message: they are valid only as long as
// the caller keeps that buffer untouched.
//
// The Append* functions write server frames into a caller-supplied buffer (usually a
// pooled one) and never allocate beyond growing it.
package envelope
