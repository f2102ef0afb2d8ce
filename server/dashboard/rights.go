package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// rightsSlug is the data-rights page: the project's audit log, and, for a
// session that holds the project's admin key, erasing one user.
const rightsSlug = "rights"

func init() {
	pages = append(pages, page{Slug: rightsSlug, Title: "Data rights",
		Intro: "Erase one user's data, and see every erasure and key change of this project.",
		Panels: []panel{{ID: "audit", Title: "Audit log", Wide: true,
			Note: "Every erasure and key change, newest first, whatever the filters: who (a key's prefix, or the command line), what and when. It holds no user's id."}}})
	custom["audit"] = (*Handler).audit
}

// auditShown is how many audit entries the page shows.
const auditShown = 500

// audit is the project's audit log, newest first.
func (h *Handler) audit(ctx context.Context, project int64, _ filters) (answer, error) {
	t := table{Columns: []string{"at", "actor", "action", "detail"}}
	a := answer{Table: t, API: "GET /api/v2/audit"}
	if h.cfg.Rights == nil {
		return a, nil
	}
	latest, err := h.cfg.Rights.LatestAudit(ctx, project, auditShown)
	if err != nil {
		return a, err
	}
	for _, e := range latest {
		at := e.At.UTC().Format("2006-01-02 15:04:05 UTC")
		a.Table.Rows = append(a.Table.Rows, []cell{{Text: at, Raw: e.At.UTC().Format(time.RFC3339)},
			{Text: e.Actor, Raw: e.Actor}, {Text: e.Action, Raw: e.Action}, {Text: detailText(e.Detail), Raw: string(e.Detail)}})
	}
	return a, nil
}

// detailText shows an audit entry's detail as "key: value" pairs.
func detailText(d json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(d, &m) != nil {
		return string(d)
	}
	var parts []string
	for _, k := range []string{"key", "kind", "events", "user_rows", "sketches", "name", "days"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s: %v", k, v))
		}
	}
	return strings.Join(parts, ", ")
}

// erase serves POST /p/{project}/erase: the form asks for the user's
// anonymous ID, then for a confirmation, then erases at once and says
// what was erased. It needs the project's admin key in the session.
func (h *Handler) erase(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	s, p, token, ok := h.project(w, r)
	if !ok {
		return
	}
	if !validCSRF(r, sessionCookie) || !sameOrigin(r) {
		http.Error(w, "the form expired; reload the page", http.StatusForbidden)
		return
	}
	pg, _ := findPage(rightsSlug)
	form := &rightsForm{UserID: strings.TrimSpace(r.PostFormValue("user_id"))}
	switch {
	case h.cfg.Rights == nil:
		form.Problem = "This server cannot erase data."
	case p.KeyKind != server.KeyAdmin:
		form.status = http.StatusForbidden
		form.Problem = "Erasing needs the project's admin key: add it with the project menu's key field."
	default:
		user, valid := wire.ParseUserID(form.UserID)
		switch {
		case !valid:
			form.Problem = "An anonymous ID is anon_ followed by 64 lower-case hexadecimal digits, as `telemetry status` shows it."
		case r.PostFormValue("confirm") != "yes":
			form.Confirm = true
		default:
			e, err := h.cfg.Rights.EraseUser(r.Context(), server.EraseRequest{ProjectID: p.ID, UserID: user, Actor: p.KeyPrefix})
			if err != nil {
				h.log.Error("erasing a user from the dashboard failed", "project", p.ID, "error", err)
				form.Problem = "The erasure could not be done now; nothing was confirmed. Try again."
				break
			}
			form.Result = fmt.Sprintf("Erased %s: %d events, %d per-user rows, and the ID's hash from %d sketches. Its events recorded before %s that arrive later are discarded.",
				form.UserID, e.Events, e.UserRows, e.Sketches, e.ErasedBefore.UTC().Format("2006-01-02 15:04:05 UTC"))
			form.UserID = ""
		}
	}
	h.show(w, r, s, p, token, pg, form)
}
