package server

import "sync"

// maxCachedKeys bounds the key cache; when it is full it starts over.
const maxCachedKeys = 4096

// keyCache remembers the write keys that a lookup found valid, by hash, so
// that a request with a known key needs no lookup of its own. It is only a
// hint: [Store.Ingest] checks the key again inside the transaction that
// stores the events, so a revoked key stores nothing however long it stays
// here, and a refusal from that check removes it.
type keyCache struct {
	mu   sync.RWMutex
	keys map[[32]byte]Key
}

func (c *keyCache) get(hash [32]byte) (Key, bool) {
	c.mu.RLock()
	k, ok := c.keys[hash]
	c.mu.RUnlock()
	return k, ok
}

func (c *keyCache) put(hash [32]byte, k Key) {
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxCachedKeys {
		c.keys = make(map[[32]byte]Key)
	}
	c.keys[hash] = k
	c.mu.Unlock()
}

func (c *keyCache) forget(hash [32]byte) {
	c.mu.Lock()
	delete(c.keys, hash)
	c.mu.Unlock()
}
