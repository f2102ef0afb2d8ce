// Package pgtest gives tests real, isolated PostgreSQL databases.
//
// Tests use the server at $TK_TEST_DATABASE_URL, by default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable (scripts/ensure-postgres.sh
// prints a usable URL, starting a throwaway cluster when needed). [New] and
// [CreateDatabase] make a fresh database on it, dropped afterwards; when the
// server cannot be reached they fail with a one-line explanation rather than
// skip.
//
// [StartCluster] runs a private PostgreSQL cluster with initdb and pg_ctl on
// a free port, for tests that stop and restart the database; it skips the
// test when initdb is not installed.
package pgtest
