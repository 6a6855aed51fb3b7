package digest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// ErrBadToken means an unsubscribe token is malformed or its signature is wrong.
var ErrBadToken = errors.New("invalid unsubscribe token")

const tokenVersion = "v1"

func mac(secret []byte, userID string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("talim digest unsubscribe\x00"))
	h.Write([]byte(userID))
	return h.Sum(nil)
}

// SignUnsubscribe returns the token of the unsubscribe link of userID:
// "v1.<base64url user id>.<base64url HMAC-SHA256>". Without the secret it cannot
// be forged or guessed; it does not expire (the link in an old email keeps working).
func SignUnsubscribe(secret []byte, userID string) string {
	enc := base64.RawURLEncoding
	return tokenVersion + "." + enc.EncodeToString([]byte(userID)) + "." + enc.EncodeToString(mac(secret, userID))
}

// VerifyUnsubscribe returns the user id of a valid token.
func VerifyUnsubscribe(secret []byte, token string) (string, error) {
	if len(token) > 512 {
		return "", ErrBadToken
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != tokenVersion {
		return "", ErrBadToken
	}
	enc := base64.RawURLEncoding
	user, err := enc.DecodeString(parts[1])
	if err != nil || len(user) == 0 {
		return "", ErrBadToken
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, mac(secret, string(user))) {
		return "", ErrBadToken
	}
	return string(user), nil
}
