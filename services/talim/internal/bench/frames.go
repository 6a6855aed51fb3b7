package bench

import (
	"bytes"
	"strconv"
)

// The bench reads server frames with a few byte searches instead of a JSON decoder:
// a fan-out run delivers hundreds of thousands of frames per second to processes that
// share two cores with the system under test. The searched keys are unambiguous in
// the frames the bench provokes: envelope ids are strings starting with a letter the
// bench chose ('s' send, 'j' join, 'h' history page), message ids start with "m_".

// jsonStr returns the raw (unescaped) string value of the first "key":"…" in b.
func jsonStr(b []byte, key string) []byte {
	i := indexKey(b, key)
	if i < 0 || i >= len(b) || b[i] != '"' {
		return nil
	}
	i++
	j := bytes.IndexByte(b[i:], '"')
	if j < 0 {
		return nil
	}
	return b[i : i+j]
}

// jsonInt returns the integer value of the first "key":N in b.
func jsonInt(b []byte, key string) (int64, bool) {
	i := indexKey(b, key)
	if i < 0 {
		return 0, false
	}
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
	return n, err == nil
}

// indexKey returns the index of the value after "key": (spaces skipped), or -1.
func indexKey(b []byte, key string) int {
	var pat [40]byte
	p := append(pat[:0], '"')
	p = append(p, key...)
	p = append(p, '"', ':')
	i := bytes.Index(b, p)
	if i < 0 {
		return -1
	}
	i += len(p)
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stampOf parses the sender timestamp (Unix ns) of a bench payload "b<ns>…".
func stampOf(s []byte) (int64, bool) {
	if len(s) < 2 || s[0] != 'b' {
		return 0, false
	}
	j := 1
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(s[1:j]), 10, 64)
	return n, err == nil
}

// notifyIndex parses "b<ns>:<k>" (a notification title) into k.
func notifyIndex(s []byte) (int64, bool) {
	i := bytes.IndexByte(s, ':')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s[i+1:]), 10, 64)
	return n, err == nil
}
