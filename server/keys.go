package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// Key prefixes.
const (
	WriteKeyPrefix = "tk_w_"
	ReadKeyPrefix  = "tk_r_"
	AdminKeyPrefix = "tk_a_"
	keyRandomBytes = 32
	keyLength      = 5 + 43 // prefix + base64url of 32 bytes, no padding
	displayPrefix  = 12
)

// NewKey makes a random key of the given kind. It returns the key, to be
// shown once to its owner, and the [Key] to store (without ID, ProjectID and
// times), which holds only the key's hash.
func NewKey(kind KeyKind) (string, Key, error) {
	var prefix string
	switch kind {
	case KeyWrite:
		prefix = WriteKeyPrefix
	case KeyRead:
		prefix = ReadKeyPrefix
	case KeyAdmin:
		prefix = AdminKeyPrefix
	default:
		return "", Key{}, fmt.Errorf("unknown key kind %q", kind)
	}
	b := make([]byte, keyRandomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", Key{}, err
	}
	s := prefix + base64.RawURLEncoding.EncodeToString(b)
	return s, Key{Kind: kind, Hash: HashKey(s), Prefix: s[:displayPrefix]}, nil
}

// HashKey returns the SHA-256 hash under which a key is stored.
func HashKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// WellFormedKey reports whether s has the form of a key, a prefix and 43
// base64url characters, before any lookup.
func WellFormedKey(s string) bool {
	if len(s) != keyLength || !(strings.HasPrefix(s, WriteKeyPrefix) || strings.HasPrefix(s, ReadKeyPrefix) ||
		strings.HasPrefix(s, AdminKeyPrefix)) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s[5:])
	return err == nil
}
