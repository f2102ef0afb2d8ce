// Package fsutil opens and reads small regular files the way a short-lived
// process wants to: with blocking system calls only.
//
// os.OpenFile registers every file with the runtime's network poller, which
// a fresh process first has to create (epoll_create1, eventfd2, epoll_ctl),
// and which costs four more system calls for each file after that. A
// command line tool that records one event per run reads its consent file
// and the machine ID and appends to its queue's journal, all regular files
// that are never waited on: [OpenFile] and [ReadFile] skip the poller.
package fsutil
