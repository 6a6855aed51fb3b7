// Package webpush sends Web Push messages: RFC 8030 delivery requests, RFC 8291
// message encryption (the "aes128gcm" content coding of RFC 8188, one record) and
// RFC 8292 VAPID authentication (an ES256 JWT per push-service origin).
//
// It is written on the standard library (crypto/ecdh, crypto/hkdf, crypto/aes,
// crypto/cipher) and golang-jwt for the JWT; docs/protocol.md "Web Push" says how the
// services use it. Interoperability is checked by an independent decoder: the
// JavaScript test services/edge/web/kit/test/webpush.test.mjs decrypts payloads
// produced here with the npm http_ece package.
package webpush
