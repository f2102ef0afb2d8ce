//go:build !unix

package httpapi

// fileLimit reports that the limit on open files is unknown here.
func fileLimit() (uint64, bool) { return 0, false }

// isFDExhausted reports false: the error is not recognised here.
func isFDExhausted(error) bool { return false }
