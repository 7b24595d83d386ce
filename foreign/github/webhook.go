package github

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	gh "github.com/google/go-github/v84/github"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/merge"
)

// Webhooks takes GitHub's webhook deliveries for a gateway replica (prophet
// serve mounts it at WebhookPath). Each delivery:
//
//   - must carry X-Hub-Signature-256, the HMAC-SHA256 of its body with the
//     secret, checked in constant time: otherwise 401;
//   - of an event other than issues and issue_comment (ping, say) is
//     answered 200 and ignored;
//   - of a repository this replica does not sync (no foreign replica for
//     it) is answered 202, disabled, and logged;
//   - otherwise becomes an inbound sync operation (foreign.Foreign.Deliver:
//     a redelivery of the same X-GitHub-Delivery is a duplicate, an older
//     version than one there is dropped), and the queued inbound operations
//     run at once (RunInbound), one per record at a time.
//
// The answer is JSON: {"op": ID, "state": "...", "reason": "..."}.
type Webhooks struct {
	Local  *merge.Local
	Secret []byte
	Logger *slog.Logger
	// Open opens the foreign replica of a canonical address (with its
	// gateway). Webhooks keeps it open until Close.
	Open func(address string) (*foreign.Foreign, error)
	// Options settles conflicts of inbound changes (nil: one that nothing
	// settles errs the operation).
	Options *merge.Options

	mu   sync.Mutex // one delivery at a time
	open map[string]*foreign.Foreign
}

// Close closes the foreign replicas it opened.
func (h *Webhooks) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	for k, f := range h.open {
		err = errors.Join(err, f.Close())
		delete(h.open, k)
	}
	return err
}

func (h *Webhooks) foreign(canonical string) (*foreign.Foreign, error) {
	if f, ok := h.open[canonical]; ok {
		return f, nil
	}
	f, err := h.Open(canonical)
	if err != nil {
		return nil, err
	}
	if h.open == nil {
		h.open = map[string]*foreign.Foreign{}
	}
	h.open[canonical] = f
	return f, nil
}

// maxWebhook bounds a delivery's body (GitHub caps payloads at 25 MB).
const maxWebhook = 25 << 20

type webhookAnswer struct {
	Op     uint64 `json:"op,omitempty"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	answer := func(status int, a webhookAnswer) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(a)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		answer(http.StatusMethodNotAllowed, webhookAnswer{State: "refused", Reason: "webhooks are POSTed"})
		return
	}
	log := h.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(h.Secret) == 0 {
		answer(http.StatusServiceUnavailable, webhookAnswer{State: "refused", Reason: "no webhook secret is configured (PROPHET_GITHUB_WEBHOOK_SECRET)"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhook))
	if err != nil {
		answer(http.StatusRequestEntityTooLarge, webhookAnswer{State: "refused", Reason: err.Error()})
		return
	}
	// SHA-256 only (no downgrade to sha1=), hmac.Equal inside: constant time.
	sig := r.Header.Get(gh.SHA256SignatureHeader)
	if err := gh.ValidateSignature(sig, body, h.Secret); err != nil || !strings.HasPrefix(sig, "sha256=") {
		log.Warn("webhook with a bad signature", "delivery", r.Header.Get(gh.DeliveryIDHeader), "remote", r.RemoteAddr)
		answer(http.StatusUnauthorized, webhookAnswer{State: "refused", Reason: "bad or missing X-Hub-Signature-256"})
		return
	}
	kind, delivery := gh.WebHookType(r), gh.DeliveryID(r)
	if kind != "issues" && kind != "issue_comment" {
		answer(http.StatusOK, webhookAnswer{State: "ignored", Reason: kind + " events are not synced"})
		return
	}
	owner, repo, api, err := Repository(kind, body)
	if err != nil {
		answer(http.StatusBadRequest, webhookAnswer{State: "refused", Reason: err.Error()})
		return
	}
	addr := "github:" + owner + "/" + repo
	if api != "" && api != defaultAPI {
		addr += "?api=" + api
	}
	_, _, _, canonical, err := ParseAddress(addr)
	if err != nil {
		answer(http.StatusBadRequest, webhookAnswer{State: "refused", Reason: err.Error()})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	dir := filepath.Join(h.Local.R.Dir(), "foreign", foreign.NameUUID(canonical).String())
	if _, err := os.Stat(dir); err != nil {
		log.Info("webhook of a repository not synced here", "repository", canonical, "delivery", delivery)
		answer(http.StatusAccepted, webhookAnswer{State: foreign.Disabled.String(), Reason: canonical + " is not synced by this replica"})
		return
	}
	f, err := h.foreign(canonical)
	if err != nil {
		log.Error("webhook: opening the foreign replica", "repository", canonical, "err", err)
		answer(http.StatusServiceUnavailable, webhookAnswer{State: "refused", Reason: err.Error()})
		return
	}
	ctx := context.WithoutCancel(r.Context())
	op, err := f.Deliver(ctx, delivery, kind, body)
	if err != nil {
		answer(http.StatusInternalServerError, webhookAnswer{State: "refused", Reason: err.Error()})
		return
	}
	if op == nil {
		answer(http.StatusOK, webhookAnswer{State: "ignored", Reason: "the event concerns nothing synced"})
		return
	}
	if _, err := f.RunInbound(ctx, h.Options); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("webhook: running inbound operations", "repository", canonical, "err", err)
	}
	if ops, err := f.State().Ops(&op.Ref); err == nil {
		for _, o := range ops {
			if o.ID == op.ID {
				op = o
			}
		}
	}
	answer(http.StatusAccepted, webhookAnswer{Op: op.ID, State: op.State.String(), Reason: op.Reason})
}
