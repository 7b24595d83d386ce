package githubfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
)

// Delivery is one webhook delivery: an event and the exact request body
// GitHub would post for it.
type Delivery struct {
	ID     string // X-GitHub-Delivery, a UUID
	Event  string // X-GitHub-Event: "issues" or "issue_comment"
	Action string // the payload's action
	Body   []byte // the JSON payload, as signed and sent
	// Attempts counts how often the delivery has been posted.
	Attempts int
}

// Header returns the headers GitHub sends with the delivery, signed with
// secret (no signature headers if secret is empty).
func (d *Delivery) Header(secret string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "GitHub-Hookshot/githubfake")
	h.Set("X-GitHub-Event", d.Event)
	h.Set("X-GitHub-Delivery", d.ID)
	h.Set("X-GitHub-Hook-ID", "1")
	h.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	if secret != "" {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(d.Body)
		h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	return h
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// queueLocked renders an event and holds it until delivered. extra holds
// action-specific fields: "changes", or "label"/"assignee" names.
func (s *Server) queueLocked(event, action string, r *repo, is *Issue, c *Comment, extra map[string]any, actor string) {
	l := links{api: s.URL(), html: s.opts.HTMLBase}
	open := 0
	for _, i := range r.issues {
		if i.State == "open" {
			open++
		}
	}
	payload := map[string]any{
		"action":     action,
		"issue":      s.renderIssue(l, r, is),
		"repository": l.repo(r, s.userLocked(r.Owner), open),
		"sender":     l.user(s.userLocked(actor)),
	}
	if c != nil {
		payload["comment"] = l.comment(r, c, s.userLocked)
	}
	switch action {
	case "edited":
		payload["changes"] = extra
	case "labeled", "unlabeled":
		payload["label"] = l.label(r, extra["label"].(string))
	case "assigned", "unassigned":
		payload["assignee"] = l.user(s.userLocked(extra["assignee"].(string)))
	}
	body, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("githubfake: marshal webhook: %v", err))
	}
	d := &Delivery{ID: newUUID(), Event: event, Action: action, Body: body}
	s.deliveries = append(s.deliveries, d)
	s.pending = append(s.pending, d)
}

// Pending returns copies of the deliveries not yet delivered, oldest first.
func (s *Server) Pending() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.pending))
	for i, d := range s.pending {
		out[i] = *d
	}
	return out
}

// Deliveries returns copies of every delivery ever queued, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		out[i] = *d
	}
	return out
}

// Deliver posts the oldest pending delivery to the webhook URL and returns
// it. It returns an error if nothing is pending, if the post fails, or if the
// receiver does not answer 2xx; the delivery is no longer pending either way
// (as on GitHub, a failed delivery is not retried unless redelivered).
func (s *Server) Deliver() (Delivery, error) {
	s.mu.Lock()
	if len(s.pending) == 0 {
		s.mu.Unlock()
		return Delivery{}, fmt.Errorf("githubfake: no pending delivery")
	}
	d := s.pending[0]
	s.pending = s.pending[1:]
	s.mu.Unlock()
	return s.post(d)
}

// DeliverAll delivers every pending delivery in order, stopping at the
// first failure.
func (s *Server) DeliverAll() error {
	for {
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		if _, err := s.Deliver(); err != nil {
			return err
		}
	}
}

// DeliverInOrder delivers the pending deliveries with the given IDs in the
// given order, stopping at the first failure. Others stay pending.
func (s *Server) DeliverInOrder(ids []string) error {
	for _, id := range ids {
		s.mu.Lock()
		var d *Delivery
		for i, p := range s.pending {
			if p.ID == id {
				d = p
				s.pending = append(s.pending[:i:i], s.pending[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
		if d == nil {
			return fmt.Errorf("githubfake: no pending delivery %s", id)
		}
		if _, err := s.post(d); err != nil {
			return err
		}
	}
	return nil
}

// Redeliver posts an already queued delivery again, with the same delivery
// ID and body, as GitHub's "Redeliver" does. A pending delivery stays
// pending.
func (s *Server) Redeliver(id string) error {
	s.mu.Lock()
	var d *Delivery
	for _, p := range s.deliveries {
		if p.ID == id {
			d = p
		}
	}
	s.mu.Unlock()
	if d == nil {
		return fmt.Errorf("githubfake: no delivery %s", id)
	}
	_, err := s.post(d)
	return err
}

func (s *Server) post(d *Delivery) (Delivery, error) {
	s.mu.Lock()
	d.Attempts++
	cp := *d
	s.mu.Unlock()
	if s.opts.WebhookURL == "" {
		return cp, fmt.Errorf("githubfake: no WebhookURL configured")
	}
	req, err := http.NewRequest(http.MethodPost, s.opts.WebhookURL, bytes.NewReader(cp.Body))
	if err != nil {
		return cp, err
	}
	req.Header = cp.Header(s.opts.WebhookSecret)
	resp, err := s.opts.WebhookClient.Do(req)
	if err != nil {
		return cp, fmt.Errorf("githubfake: deliver %s: %w", cp.ID, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return cp, fmt.Errorf("githubfake: deliver %s: receiver answered %s", cp.ID, resp.Status)
	}
	return cp, nil
}
