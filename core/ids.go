package core

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/google/uuid"
)

// newID returns a new version 7 UUID for an event or a session.
//
// Its random bits come from the runtime's generator (math/rand/v2's
// top-level functions: ChaCha8, seeded from the operating system's
// randomness in every process) rather than crypto/rand, whose first read
// in a process sets up the kernel's getrandom state: tens of microseconds
// that a short-lived CLI would spend on one ID. IDs need to be unique,
// not secret.
func newID() (uuid.UUID, error) {
	return uuid.NewV7FromReader(runtimeRand{})
}

// runtimeRand is an io.Reader of the runtime's random bytes.
type runtimeRand struct{}

func (runtimeRand) Read(p []byte) (int, error) {
	var buf [8]byte
	for i := 0; i < len(p); i += len(buf) {
		binary.LittleEndian.PutUint64(buf[:], rand.Uint64())
		copy(p[i:], buf[:])
	}
	return len(p), nil
}
