package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// handleErasure serves POST /v1/erasures: a person erases, from the tool
// itself, what the tool sent under their anonymous id. The write key is
// public, so the request proves nothing about who sends it; docs/privacy.md
// says why honouring it is safe. Each write key's requests share the
// ingest rate limit, and a project's write keys may ask for
// [server.WriteKeyErasuresPerDay] erasures a day.
func (s *Server) handleErasure() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.authenticate(r)
		if err == nil && a.cached {
			err = s.confirmKey(r, a.hash)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		info(r).project = a.key.ProjectID
		if ok, wait := s.limits.allow(a.key.ID, s.cfg.Now()); !ok {
			s.writeError(w, r, &server.Error{Kind: server.KindRateLimited, Message: "rate limited", RetryAfter: wait})
			return
		}
		var req wire.ErasureRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.writeError(w, r, server.Errorf(server.KindBadRequest, "the body must be {\"user_id\": \"anon_…\", \"requested_at\": RFC 3339 time}"))
			return
		}
		user, ok := wire.ParseUserID(req.UserID)
		if !ok {
			s.writeError(w, r, server.Errorf(server.KindBadRequest, "user_id must be anon_ and 64 lower-case hex digits"))
			return
		}
		s.erase(w, r, server.EraseRequest{ProjectID: a.key.ProjectID, UserID: user, Before: req.RequestedAt,
			Actor: a.key.Prefix, ByWriteKey: true})
	})
}

// handleEraseUser serves DELETE /v1/users/{id}: the author erases a user,
// with the project's admin key.
func (s *Server) handleEraseUser() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := s.adminAccess(w, r)
		if !ok {
			return
		}
		user, ok := wire.ParseUserID(r.PathValue("id"))
		if !ok {
			s.writeError(w, r, server.Errorf(server.KindBadRequest, "the user id must be anon_ and 64 lower-case hex digits"))
			return
		}
		s.erase(w, r, server.EraseRequest{ProjectID: key.ProjectID, UserID: user, Actor: key.Prefix})
	})
}

// erase erases synchronously and answers with what was erased.
func (s *Server) erase(w http.ResponseWriter, r *http.Request, req server.EraseRequest) {
	e, err := s.rights.EraseUser(r.Context(), req)
	switch {
	case errors.Is(err, server.ErrTooManyErasures):
		s.writeError(w, r, &server.Error{Kind: server.KindRateLimited,
			Message:    "this project's write keys have asked for all the erasures they may today; retry tomorrow",
			RetryAfter: time.Until(time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour))})
	case err != nil:
		s.writeError(w, r, &server.Error{Kind: server.KindUnavailable, Message: "cannot erase now, retry later",
			RetryAfter: s.cfg.RetryAfter, Err: err})
	default:
		writeJSON(w, http.StatusOK, e)
	}
}

// adminAccess authenticates a request that needs the project's admin key,
// under the query API's rate limit.
func (s *Server) adminAccess(w http.ResponseWriter, r *http.Request) (server.Key, bool) {
	key, ok := s.readAccess(w, r)
	if ok && key.Kind != server.KeyAdmin {
		s.writeError(w, r, server.Errorf(server.KindForbidden, "this needs the project's admin key (tk_a_…)"))
		return server.Key{}, false
	}
	return key, ok
}

// handleAudit serves GET /api/v2/audit: the project's audit log (erasures
// and key changes), oldest first, after=<id> to page on, with a read or
// admin key, as JSON or CSV (format=csv or Accept: text/csv). It holds no
// personal data.
func (s *Server) handleAudit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := s.readAccess(w, r)
		if !ok {
			return
		}
		after, err := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		if r.URL.Query().Get("after") == "" {
			after, err = 0, nil
		}
		if err != nil || after < 0 {
			s.writeError(w, r, server.Errorf(server.KindBadRequest, "after must be an entry id"))
			return
		}
		asCSV, err := wantsCSV(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		entries, err := s.rights.AuditLog(r.Context(), key.ProjectID, after, 1000)
		if err != nil {
			s.writeError(w, r, &server.Error{Kind: server.KindUnavailable, Message: "cannot read the audit log now, retry later",
				RetryAfter: s.cfg.RetryAfter, Err: err})
			return
		}
		if asCSV {
			cw := startCSV(w, "audit")
			_ = cw.Write([]string{"id", "at", "actor", "action", "detail"})
			for _, e := range entries {
				_ = cw.Write(safeCSV([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.Action, string(e.Detail)}))
			}
			cw.Flush()
			return
		}
		if entries == nil {
			entries = []server.AuditEntry{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
	})
}

// keyJSON is a key as the keys API shows it: never the key itself, which
// only its creation answers with, once.
type keyJSON struct {
	ID        int64      `json:"key_id"`
	Kind      string     `json:"kind"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	Key       string     `json:"key,omitempty"`
}

func toKeyJSON(k server.Key) keyJSON {
	return keyJSON{ID: k.ID, Kind: string(k.Kind), Prefix: k.Prefix, CreatedAt: k.CreatedAt.UTC(), RevokedAt: k.RevokedAt}
}

// handleKeys serves GET /api/v2/keys: the project's keys, with its admin
// key.
func (s *Server) handleKeys() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := s.adminAccess(w, r)
		if !ok {
			return
		}
		keys, err := s.keyManager.Keys(r.Context(), key.ProjectID)
		if err != nil {
			s.writeError(w, r, &server.Error{Kind: server.KindUnavailable, Message: "cannot list the keys now, retry later",
				RetryAfter: s.cfg.RetryAfter, Err: err})
			return
		}
		out := make([]keyJSON, 0, len(keys))
		for _, k := range keys {
			out = append(out, toKeyJSON(k))
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": out})
	})
}

// handleCreateKey serves POST /api/v2/keys {"kind": "write|read|admin"}:
// a new key of the project, shown in this answer only.
func (s *Server) handleCreateKey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := s.adminAccess(w, r)
		if !ok {
			return
		}
		var req struct {
			Kind string `json:"kind"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.writeError(w, r, server.Errorf(server.KindBadRequest, `the body must be {"kind": "write", "read" or "admin"}`))
			return
		}
		secret, k, err := server.NewKey(server.KeyKind(req.Kind))
		if err != nil {
			s.writeError(w, r, server.Errorf(server.KindBadRequest, `kind must be "write", "read" or "admin"`))
			return
		}
		k.ProjectID = key.ProjectID
		if k, err = s.keyManager.CreateKeyAs(r.Context(), k, key.Prefix); err != nil {
			s.writeError(w, r, &server.Error{Kind: server.KindUnavailable, Message: "cannot create the key now, retry later",
				RetryAfter: s.cfg.RetryAfter, Err: err})
			return
		}
		out := toKeyJSON(k)
		out.Key = secret
		writeJSON(w, http.StatusCreated, out)
	})
}

// handleRevokeKey serves DELETE /api/v2/keys/{id}: revokes a key of the
// project; the next request with it gets 403.
func (s *Server) handleRevokeKey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := s.adminAccess(w, r)
		if !ok {
			return
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			s.writeError(w, r, server.Errorf(server.KindBadRequest, "the key id must be a positive integer"))
			return
		}
		err = s.keyManager.RevokeKeyAs(r.Context(), key.ProjectID, id, key.Prefix)
		switch {
		case errors.Is(err, server.ErrKeyNotFound):
			s.writeError(w, r, server.Errorf(server.KindNotFound, "this project has no key %d", id))
		case err != nil:
			s.writeError(w, r, &server.Error{Kind: server.KindUnavailable, Message: "cannot revoke the key now, retry later",
				RetryAfter: s.cfg.RetryAfter, Err: err})
		default:
			// This process stops taking the key at once; others when the
			// change reaches their key watch (milliseconds).
			s.readKeys.clear()
			w.WriteHeader(http.StatusNoContent)
		}
	})
}
