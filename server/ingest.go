package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// ingestResponse is the body of a 200 from POST /v1/events.
type ingestResponse struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   []Rejection `json:"rejected"`
}

// handleIngest serves POST /v1/events: authenticate, rate-limit, read,
// decode, store, answer.
func (s *Server) handleIngest() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if ok, wait := s.limits.allow(key.ID, s.cfg.Now()); !ok {
			s.writeError(w, r, &Error{Kind: KindRateLimited, Message: "rate limited", RetryAfter: wait})
			return
		}
		buf := s.getBodyBuffer()
		defer s.putBodyBuffer(buf)
		body, err := s.readBody(w, r, buf)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		batch, err := DecodeBatch(body, s.cfg.Now(), s.cfg.Retention)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		res := IngestResult{}
		if len(batch.Events) > 0 || batch.Dropped > 0 {
			res, err = s.cfg.Store.Ingest(r.Context(), key.ProjectID, batch.Events, batch.Dropped)
			if err != nil {
				s.writeError(w, r, &Error{Kind: KindUnavailable, Message: "cannot store events now, retry later",
					RetryAfter: s.cfg.RetryAfter, Err: err})
				return
			}
		}
		s.metrics.accepted.Add(float64(res.Accepted))
		s.metrics.duplicates.Add(float64(res.Duplicates))
		s.metrics.dropped.Add(float64(batch.Dropped))
		for _, rj := range batch.Rejected {
			s.metrics.rejected.WithLabelValues(rj.Reason).Inc()
		}
		if batch.Rejected == nil {
			batch.Rejected = []Rejection{}
		}
		writeJSON(w, http.StatusOK, ingestResponse{
			Accepted: res.Accepted, Duplicates: res.Duplicates, Rejected: batch.Rejected,
		})
	})
}

// authenticate finds the write key of a request.
func (s *Server) authenticate(r *http.Request) (Key, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return Key{}, errorf(KindUnauthorized, "missing write key: send Authorization: Bearer <write key>")
	}
	token = strings.TrimSpace(token)
	if !wellFormedKey(token) {
		return Key{}, errorf(KindUnauthorized, "unknown key")
	}
	hash := HashKey(token)
	key, err := s.cfg.Store.KeyByHash(r.Context(), hash)
	if errors.Is(err, ErrKeyNotFound) || (err == nil && subtle.ConstantTimeCompare(key.Hash[:], hash[:]) != 1) {
		return Key{}, errorf(KindUnauthorized, "unknown key")
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return Key{}, &Error{Kind: KindUnavailable, Message: "request canceled", Err: err}
		}
		return Key{}, &Error{Kind: KindUnavailable, Message: "cannot check the key now, retry later",
			RetryAfter: s.cfg.RetryAfter, Err: err}
	}
	if key.RevokedAt != nil {
		return Key{}, errorf(KindForbidden, "the key is revoked")
	}
	if key.Kind != KeyWrite {
		return Key{}, errorf(KindForbidden, "not a write key")
	}
	return key, nil
}

// maxPooledBody is the largest body buffer kept for reuse; larger ones are
// left to the garbage collector so that one big request does not pin memory.
const maxPooledBody = 256 << 10

func (s *Server) getBodyBuffer() *bytes.Buffer {
	if b, ok := s.bodyBufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

// putBodyBuffer returns buf for reuse; nothing may refer to its bytes
// afterwards.
func (s *Server) putBodyBuffer(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBody {
		return
	}
	buf.Reset()
	s.bodyBufs.Put(buf)
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
// limits into buf, decompressing gzip. The bytes returned are buf's.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, errorf(KindUnsupportedMedia, "Content-Type must be application/json")
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, errorf(KindTooLarge, "the body is over %d bytes", MaxBodyBytes)
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	var src io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := s.gunzip(body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, errorf(KindTooLarge, "the body is over %d bytes", MaxBodyBytes)
			}
			return nil, errorf(KindBadRequest, "the body is not valid gzip")
		}
		defer func() {
			zr.Close()
			s.gzipReaders.Put(zr)
		}()
		src = zr
	default:
		return nil, errorf(KindUnsupportedMedia, "Content-Encoding must be gzip or absent")
	}
	_, err = buf.ReadFrom(io.LimitReader(src, MaxDecodedBytes+1))
	b := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(KindTooLarge, "the body is over %d bytes", MaxBodyBytes)
		}
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errorf(KindBadRequest, "the body is not valid gzip")
		}
		return nil, errorf(KindBadRequest, "cannot read the body")
	}
	if len(b) > MaxDecodedBytes {
		return nil, errorf(KindTooLarge, "the decompressed body is over %d bytes", MaxDecodedBytes)
	}
	return b, nil
}
