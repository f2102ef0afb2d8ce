package httpapi

import (
	"sync"
	"time"

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

// readKeyTTL is how long a read key found valid is served from memory
// without a lookup. Each change of the keys that [Server.WatchKeys] sees
// (a key revoked, say) empties the cache at once; the TTL bounds how long
// a revoked read key may still read when nothing watches the keys.
const readKeyTTL = 30 * time.Second

// readKeyCache remembers valid read keys by hash. Unlike a write key,
// whose every use is checked again in the transaction that stores the
// events, a read key is trusted from here: so entries expire, and any
// change of the keys empties it.
type readKeyCache struct {
	mu sync.Mutex
	m  map[[32]byte]readKeyEntry
}

type readKeyEntry struct {
	key     server.Key
	expires time.Time
}

func (c *readKeyCache) get(hash [32]byte, now time.Time) (server.Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || now.After(e.expires) {
		return server.Key{}, false
	}
	return e.key, true
}

func (c *readKeyCache) put(hash [32]byte, k server.Key, now time.Time) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxFoundKeys {
		c.m = make(map[[32]byte]readKeyEntry)
	}
	c.m[hash] = readKeyEntry{k, now.Add(readKeyTTL)}
	c.mu.Unlock()
}

func (c *readKeyCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
