package postgres

// SharedTransactions returns how many ingest transactions held the batches
// of more than one request.
func (db *DB) SharedTransactions() int64 {
	db.groupMu.Lock()
	defer db.groupMu.Unlock()
	return db.groups.shared
}
