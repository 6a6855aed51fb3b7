package sio

import (
	"crypto/rand"
	"encoding/base64"
)

// SIDLen is the length of the ids made by NewSID.
const SIDLen = 20

// NewSID returns a random session id: 20 base64url characters (120 bits
// from crypto/rand), the same shape as the ids of the reference server.
// It is used both for the Engine.IO sid (open packet) and for the
// Socket.IO socket id (CONNECT reply).
func NewSID() string {
	var raw [15]byte // 15 bytes = 120 bits = exactly 20 base64 characters
	// crypto/rand.Read never returns an error (it aborts the program if the
	// system's random source fails).
	_, _ = rand.Read(raw[:])
	var out [SIDLen]byte
	base64.RawURLEncoding.Encode(out[:], raw[:])
	return string(out[:])
}
