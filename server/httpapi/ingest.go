package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/decode"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// handleIngest serves POST /v1/events: authenticate, rate-limit, read,
// decode, store, answer.
func (s *Server) handleIngest() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.authenticate(r)
		if a.key.ProjectID != 0 {
			info(r).project = a.key.ProjectID
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		// refuse answers with err; a key taken from the cache is looked up
		// first, so that a key no longer valid gets its 401 or 403 as it
		// would have without the cache.
		refuse := func(err error) {
			if a.cached {
				if kerr := s.confirmKey(r, a.hash); kerr != nil {
					err = kerr
				}
			}
			s.writeError(w, r, err)
		}
		if ok, wait := s.limits.allow(a.key.ID, s.cfg.Now()); !ok {
			// No lookup: the limit also spares the database. A key revoked
			// meanwhile gets its 403 once the limit lets a request through.
			s.writeError(w, r, &server.Error{Kind: server.KindRateLimited, Message: "rate limited", RetryAfter: wait})
			return
		}
		c := claim{budget: s.mem}
		defer func() { s.metrics.bodyMemory.Set(float64(s.mem.inUse())) }()
		defer c.done()
		bp, err := s.readBody(w, r, &c)
		defer putBuffer(bp)
		if err == errNoMemory {
			s.busy(w, r)
			return
		}
		if err != nil {
			refuse(err)
			return
		}
		s.metrics.bodyMemory.Set(float64(s.mem.inUse()))
		body := *bp
		batch, err := decode.Batch(body, s.cfg.Now(), s.cfg.Retention)
		if err != nil {
			refuse(err)
			return
		}
		res := server.IngestResult{}
		if len(batch.Events) > 0 || batch.Dropped > 0 {
			// The events and the driver's copies of them, while stored.
			if need := int64(storeFactor*len(body)) - c.held; need > 0 && !c.grow(need) {
				s.busy(w, r)
				return
			}
			// The store checks the key again in its transaction.
			res, err = s.cfg.Store.Ingest(r.Context(), a.key, batch.Events, batch.Dropped)
			if err != nil {
				if kerr := keyRefusal(err); kerr != nil {
					s.keys.forget(a.hash)
					s.writeError(w, r, kerr)
					return
				}
				s.writeError(w, r, &server.Error{Kind: server.KindUnavailable, Message: "cannot store events now, retry later",
					RetryAfter: s.cfg.RetryAfter, Err: err})
				return
			}
		} else if a.cached {
			// Nothing to store, so no transaction checks the key.
			if kerr := s.confirmKey(r, a.hash); kerr != nil {
				s.writeError(w, r, kerr)
				return
			}
		}
		s.metrics.accepted.Add(float64(res.Accepted))
		s.metrics.duplicates.Add(float64(res.Duplicates))
		for dim, n := range res.Folded {
			s.metrics.folded.WithLabelValues(dim).Add(float64(n))
		}
		s.metrics.dropped.Add(float64(batch.Dropped))
		var byReason map[string]int64
		for _, rj := range batch.Rejected {
			s.metrics.rejected.WithLabelValues(rj.Reason).Inc()
			if byReason == nil {
				byReason = map[string]int64{}
			}
			byReason[rj.Reason]++
		}
		if rc, ok := s.cfg.Store.(server.RejectionCounter); ok && byReason != nil {
			// For the project's data quality; the events are stored
			// already, so a failure here is only logged.
			if err := rc.CountRejections(r.Context(), a.key.ProjectID, byReason); err != nil {
				s.log.LogAttrs(r.Context(), slog.LevelWarn, "rejections not counted",
					slog.Int64("project", a.key.ProjectID), slog.String("error", err.Error()))
			}
		}
		if batch.Rejected == nil {
			batch.Rejected = []wire.Rejection{}
		}
		writeJSON(w, http.StatusOK, wire.Response{
			// The erased are counted among the duplicates too (see wire.Response).
			Accepted: res.Accepted, Duplicates: res.Duplicates + res.Erased, Erased: res.Erased, Rejected: batch.Rejected,
		})
	})
}

// busy refuses a request whose body the memory budget cannot hold now:
// 503 with Retry-After: 1. It costs no key lookup, whatever the key: the
// client is not at fault, and a retry meets the key check.
func (s *Server) busy(w http.ResponseWriter, r *http.Request) {
	s.metrics.busy.Inc()
	s.writeError(w, r, &server.Error{Kind: server.KindUnavailable, Message: errNoMemory.Message, RetryAfter: time.Second})
}

// auth is an authenticated request's key.
type auth struct {
	key    server.Key
	hash   [32]byte
	cached bool // from the key cache, not looked up for this request
}

// authenticate finds the write key of a request: in the key cache, else by
// a lookup.
func (s *Server) authenticate(r *http.Request) (auth, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return auth{}, server.Errorf(server.KindUnauthorized, "missing write key: send Authorization: Bearer <write key>")
	}
	token = strings.TrimSpace(token)
	if !server.WellFormedKey(token) {
		return auth{}, server.Errorf(server.KindUnauthorized, "unknown key")
	}
	a := auth{hash: server.HashKey(token)}
	if k, ok := s.keys.get(a.hash); ok {
		a.key, a.cached = k, true
		return a, nil
	}
	if ok, wait := s.lookups.allow(r, s.cfg.Now()); !ok {
		return auth{}, &server.Error{Kind: server.KindRateLimited, Message: "too many requests with keys not seen yet", RetryAfter: wait}
	}
	k, err := s.lookupKey(r, a.hash)
	a.key = k
	return a, err
}

// lookupKey reads the key with this hash from the store and checks that it
// is a valid write key; a valid one goes into the key cache, a refused one
// out of it.
func (s *Server) lookupKey(r *http.Request, hash [32]byte) (server.Key, error) {
	key, err := s.cfg.Store.KeyByHash(r.Context(), hash)
	if errors.Is(err, server.ErrKeyNotFound) || (err == nil && subtle.ConstantTimeCompare(key.Hash[:], hash[:]) != 1) {
		s.keys.forget(hash)
		return server.Key{}, server.Errorf(server.KindUnauthorized, "unknown key")
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return server.Key{}, &server.Error{Kind: server.KindUnavailable, Message: "request canceled", Err: err}
		}
		return server.Key{}, &server.Error{Kind: server.KindUnavailable, Message: "cannot check the key now, retry later",
			RetryAfter: s.cfg.RetryAfter, Err: err}
	}
	if key.RevokedAt != nil {
		s.keys.forget(hash)
		return key, server.Errorf(server.KindForbidden, "the key is revoked")
	}
	if key.Kind != server.KeyWrite {
		s.keys.forget(hash)
		return key, server.Errorf(server.KindForbidden, "not a write key")
	}
	s.keys.put(hash, key)
	return key, nil
}

// confirmKey looks a cached key up again and returns its refusal (401 or
// 403) if it is no longer valid, else nil.
func (s *Server) confirmKey(r *http.Request, hash [32]byte) error {
	_, err := s.lookupKey(r, hash)
	var e *server.Error
	if errors.As(err, &e) && (e.Kind == server.KindUnauthorized || e.Kind == server.KindForbidden) {
		return err
	}
	return nil
}

// keyRefusal turns a store's key error into the request's 401 or 403, or
// returns nil for other errors.
func keyRefusal(err error) error {
	switch {
	case errors.Is(err, server.ErrKeyNotFound):
		return server.Errorf(server.KindUnauthorized, "unknown key")
	case errors.Is(err, server.ErrKeyRevoked):
		return server.Errorf(server.KindForbidden, "the key is revoked")
	case errors.Is(err, server.ErrNotWriteKey):
		return server.Errorf(server.KindForbidden, "not a write key")
	}
	return nil
}

// gunzip returns a gzip reader of r, reusing a pooled one.
func (s *Server) gunzip(r io.Reader) (*gzip.Reader, error) {
	if zr, ok := s.gzipReaders.Get().(*gzip.Reader); ok {
		if err := zr.Reset(r); err != nil {
			s.gzipReaders.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return gzip.NewReader(r)
}

// readBody checks the media type and encoding and reads the body within the
// limits, decompressing gzip, into a buffer held by c (see readLimited).
// The buffer is to be given back with putBuffer, also after an error.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, c *claim) (*[]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, server.Errorf(server.KindUnsupportedMedia, "Content-Type must be application/json")
	}
	if r.ContentLength > wire.MaxBodyBytes {
		return nil, server.Errorf(server.KindTooLarge, "the body is over %d bytes", wire.MaxBodyBytes)
	}
	body := http.MaxBytesReader(w, r.Body, wire.MaxBodyBytes)
	var src io.Reader = body
	hint := int(max(r.ContentLength, 0))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		if !c.grow(gzipState) {
			return nil, errNoMemory
		}
		zr, err := s.gunzip(body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, server.Errorf(server.KindTooLarge, "the body is over %d bytes", wire.MaxBodyBytes)
			}
			return nil, server.Errorf(server.KindBadRequest, "the body is not valid gzip")
		}
		defer func() {
			zr.Close()
			s.gzipReaders.Put(zr)
		}()
		src = zr
		hint *= 4 // JSON compresses about so
	default:
		return nil, server.Errorf(server.KindUnsupportedMedia, "Content-Encoding must be gzip or absent")
	}
	bp, err := readLimited(src, hint, wire.MaxDecodedBytes, c)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return bp, server.Errorf(server.KindTooLarge, "the body is over %d bytes", wire.MaxBodyBytes)
		}
		if err == errNoMemory {
			return bp, err
		}
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return bp, server.Errorf(server.KindBadRequest, "the body is not valid gzip")
		}
		return bp, server.Errorf(server.KindBadRequest, "cannot read the body")
	}
	if len(*bp) > wire.MaxDecodedBytes {
		return bp, server.Errorf(server.KindTooLarge, "the decompressed body is over %d bytes", wire.MaxDecodedBytes)
	}
	return bp, nil
}
