package httpapi

import (
	"sync"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// maxFoundKeys bounds the keys remembered from lookups; when it is full it
// starts over.
const maxFoundKeys = 4096

// maxListedKeys bounds the keys [Server.WatchKeys] keeps from a listing:
// about 100 bytes each. A store with more valid write keys serves the
// newest from memory and the others through lookups.
const maxListedKeys = 100_000

// keyCache remembers valid write keys by hash, so that a request with a
// known key needs no lookup of its own. It holds two sets: listed, every
// valid write key of the store's last listing (see [KeyLister]), replaced
// whole by each listing; and found, the keys a lookup found valid since
// (one created after the listing, or one past maxListedKeys).
//
// It is only a hint: [Store.Ingest] checks the key again inside the
// transaction that stores the events, so a revoked key stores nothing
// however long it stays here, and a refusal from that check removes it.
type keyCache struct {
	mu     sync.RWMutex
	listed map[[32]byte]server.Key
	found  map[[32]byte]server.Key
}

func (c *keyCache) get(hash [32]byte) (server.Key, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if k, ok := c.listed[hash]; ok {
		return k, true
	}
	k, ok := c.found[hash]
	return k, ok
}

func (c *keyCache) put(hash [32]byte, k server.Key) {
	c.mu.Lock()
	if c.found == nil || len(c.found) >= maxFoundKeys {
		c.found = make(map[[32]byte]server.Key)
	}
	c.found[hash] = k
	c.mu.Unlock()
}

func (c *keyCache) forget(hash [32]byte) {
	c.mu.Lock()
	delete(c.listed, hash)
	delete(c.found, hash)
	c.mu.Unlock()
}

// replace makes keys the listed set and returns its size.
func (c *keyCache) replace(keys []server.Key) int {
	m := make(map[[32]byte]server.Key, len(keys))
	for _, k := range keys {
		if k.Kind == server.KeyWrite && k.RevokedAt == nil {
			m[k.Hash] = k
		}
	}
	n := len(m)
	c.mu.Lock()
	c.listed = m
	c.mu.Unlock()
	return n
}
