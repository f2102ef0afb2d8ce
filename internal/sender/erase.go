package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// A person's request to erase, on the server, what the tool sent under the
// machine's anonymous ID ("telemetry delete") is kept in a small file beside
// the queue until the server has carried it out: the request survives the
// machine being offline, and the next run of the tool starts the detached
// sender to deliver it, even with telemetry off.

// Erasure is a pending erasure request.
type Erasure struct {
	RequestedAt time.Time `json:"requested_at"`
	// After a failed attempt: how many failed, and when the next may
	// start (5 seconds after the first failure, doubling up to a day).
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitempty"`
}

// Failed returns e after a failed attempt at now.
func (e Erasure) Failed(now time.Time) Erasure {
	e.Attempts++
	wait := 5 * time.Second << min(e.Attempts-1, 15)
	e.NextAttempt = now.Add(min(wait, 24*time.Hour))
	return e
}

// StartErasure starts the detached sender of the queue at queuePath to
// deliver its pending erasure, unless a sender runs. It returns the new
// process's pid, or 0 when none was started.
func StartErasure(queuePath string, now time.Time) (int, error) {
	return startSender(queuePath, func() (bool, error) { return true, nil }, func() time.Time { return now })
}

// ErasurePath is the file that holds the pending erasure of the queue at
// queuePath.
func ErasurePath(queuePath string) string { return queuePath + ".erasure" }

// SaveErasure records a pending erasure for the queue at queuePath,
// replacing the file atomically, and durably: a person's request must not
// be lost to a power cut.
func SaveErasure(queuePath string, e Erasure) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	path := ErasurePath(queuePath)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// PendingErasure returns the pending erasure of the queue at queuePath; ok
// is false when there is none (or the file is unreadable: it is then
// removed, as a request the tool cannot act on).
func PendingErasure(queuePath string) (e Erasure, ok bool) {
	b, err := fsutil.ReadFile(ErasurePath(queuePath))
	if err != nil {
		return e, false
	}
	if json.Unmarshal(b, &e) != nil || e.RequestedAt.IsZero() {
		os.Remove(ErasurePath(queuePath))
		return e, false
	}
	return e, true
}

// ClearErasure removes the pending erasure of the queue at queuePath once
// the server has carried it out.
func ClearErasure(queuePath string) error {
	err := os.Remove(ErasurePath(queuePath))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ErasureError is the server's refusal of an erasure request.
type ErasureError struct {
	Status  int
	Message string // the server's error message, if any
}

func (e *ErasureError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("the server answered %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("the server answered %d", e.Status)
}

// Erase asks the server to erase what was sent under the sender's user ID
// and recorded before e.RequestedAt, and returns what it erased. Network
// errors and 5xx are retried as batches are.
func (s *Sender) Erase(ctx context.Context, e Erasure) (wire.ErasureResponse, error) {
	var out wire.ErasureResponse
	body, err := json.Marshal(wire.ErasureRequest{UserID: s.cfg.UserID, RequestedAt: e.RequestedAt.UTC()})
	if err != nil {
		return out, err
	}
	url := strings.TrimSuffix(s.url, wire.EventsPath) + wire.ErasuresPath
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", wire.ContentType)
	if s.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.APIKey)
	}
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		var er wire.ErrorResponse
		json.Unmarshal(b, &er)
		return out, &ErasureError{Status: resp.StatusCode, Message: er.Error}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("the server's answer: %w", err)
	}
	return out, nil
}
