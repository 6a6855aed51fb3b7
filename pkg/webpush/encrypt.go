package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Sizes fixed by RFC 8291 and RFC 8188.
const (
	// PublicKeyLen is an uncompressed P-256 point (the subscription's p256dh).
	PublicKeyLen = 65
	// AuthLen is the subscription's authentication secret.
	AuthLen = 16
	saltLen = 16
	// headerLen is salt(16) || rs(4) || idlen(1) || keyid(65).
	headerLen = saltLen + 4 + 1 + PublicKeyLen
	tagLen    = 16
	// RecordSize is the rs field: one record holds the whole message.
	RecordSize = 4096
	// MaxPayload is the largest plaintext that fits a 4096-byte message body, the
	// size every push service must accept (RFC 8030 section 7.2).
	MaxPayload = RecordSize - headerLen - tagLen - 1
)

// Sentinel errors.
var (
	// ErrBadKey means a subscription's p256dh or auth is not the size or point
	// RFC 8291 requires.
	ErrBadKey = errors.New("bad subscription key")
	// ErrTooLarge means the payload does not fit one 4096-byte message.
	ErrTooLarge = errors.New("payload too large")
	// ErrDecrypt means a message could not be decrypted (Decrypt).
	ErrDecrypt = errors.New("cannot decrypt")
)

// Encrypt encrypts plaintext for the user agent with public key p256dh and secret
// auth (RFC 8291 section 3.4) and returns the aes128gcm message body.
func Encrypt(plaintext, p256dh, auth []byte) ([]byte, error) {
	asPriv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rand.Reader, salt); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	return encryptWith(asPriv, salt, plaintext, p256dh, auth)
}

// encryptWith encrypts with the sender key asPriv and salt (fixed in the RFC 8291
// appendix A test vector).
func encryptWith(asPriv *ecdh.PrivateKey, salt, plaintext, p256dh, auth []byte) ([]byte, error) {
	if len(plaintext) > MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(plaintext), MaxPayload)
	}
	if len(auth) != AuthLen {
		return nil, fmt.Errorf("%w: auth is %d bytes, want %d", ErrBadKey, len(auth), AuthLen)
	}
	uaPub, err := ecdh.P256().NewPublicKey(p256dh)
	if err != nil {
		return nil, fmt.Errorf("%w: p256dh: %w", ErrBadKey, err)
	}
	asPub := asPriv.PublicKey().Bytes()
	secret, err := asPriv.ECDH(uaPub)
	if err != nil {
		return nil, fmt.Errorf("%w: ecdh: %w", ErrBadKey, err)
	}
	gcm, nonce, err := contentKeys(secret, auth, uaPub.Bytes(), asPub, salt)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerLen, headerLen+len(plaintext)+1+tagLen)
	copy(out, salt)
	binary.BigEndian.PutUint32(out[saltLen:], RecordSize)
	out[saltLen+4] = PublicKeyLen
	copy(out[saltLen+5:], asPub)
	rec := make([]byte, 0, len(plaintext)+1)
	rec = append(append(rec, plaintext...), 2) // 0x02: the last record, no padding
	return gcm.Seal(out, nonce, rec, nil), nil
}

// contentKeys derives the AES-128-GCM key and the nonce of record 0 (RFC 8291
// section 3.4 then RFC 8188 section 2.2).
func contentKeys(secret, auth, uaPub, asPub, salt []byte) (cipher.AEAD, []byte, error) {
	info := make([]byte, 0, 14+2*PublicKeyLen)
	info = append(append(append(info, "WebPush: info\x00"...), uaPub...), asPub...)
	ikm, err := hkdf.Key(sha256.New, secret, auth, string(info), 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive ikm: %w", err)
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, nil, fmt.Errorf("derive prk: %w", err)
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, nil, fmt.Errorf("derive cek: %w", err)
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, nil, fmt.Errorf("derive nonce: %w", err)
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, nil, fmt.Errorf("aes: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, fmt.Errorf("gcm: %w", err)
	}
	return gcm, nonce, nil
}

// Decrypt is the user agent's side of Encrypt for a single-record message: priv is
// the subscription's private key, auth its secret. Tests and local tools use it; the
// interoperability test uses an independent implementation (see the package doc).
func Decrypt(body []byte, priv *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < headerLen+tagLen+1 || body[saltLen+4] != PublicKeyLen {
		return nil, fmt.Errorf("%w: malformed header", ErrDecrypt)
	}
	salt := body[:saltLen]
	asPub := body[saltLen+5 : headerLen]
	pub, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		return nil, fmt.Errorf("%w: sender key: %w", ErrDecrypt, err)
	}
	secret, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: ecdh: %w", ErrDecrypt, err)
	}
	gcm, nonce, err := contentKeys(secret, auth, priv.PublicKey().Bytes(), asPub, salt)
	if err != nil {
		return nil, err
	}
	rs := binary.BigEndian.Uint32(body[saltLen:])
	if uint32(len(body)-headerLen) > rs {
		return nil, fmt.Errorf("%w: more than one record", ErrDecrypt)
	}
	pt, err := gcm.Open(nil, nonce, body[headerLen:], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 || pt[i] != 2 {
		return nil, fmt.Errorf("%w: no last-record delimiter", ErrDecrypt)
	}
	return pt[:i], nil
}
