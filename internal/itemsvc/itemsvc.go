// Package itemsvc is a small real HTTP service of items with comments, the
// peer the generic HTTP connector is tested and benchmarked against. It
// speaks the connector's default layout: GET /items?since=T (items updated
// at or after T), GET/PATCH /items/{id}, POST /items, POST
// /items/{id}/comments; items are {"id", "updated_at", "comments", ...fields}.
package itemsvc

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Service holds the items in memory.
type Service struct {
	mu       sync.Mutex
	items    map[string]map[string]any
	next     int
	comments int
	// Token, when set, must come as the Authorization header.
	Token string
	// Requests counts the requests served.
	Requests int
	// OnWrite, when set, is called after each create or update with the
	// item's id (benchmarks use it to time arrival).
	OnWrite func(id string)
}

// New returns an empty service.
func New() *Service { return &Service{items: map[string]map[string]any{}} }

// stamp is fixed-width, so stamps also sort as text.
const stamp = "2006-01-02T15:04:05.000000000Z07:00"

func (s *Service) touch(it map[string]any) {
	it["updated_at"] = time.Now().UTC().Format(stamp)
}

// Put creates or replaces fields of an item directly (a person's edit) and
// returns its id.
func (s *Service) Put(id string, fields map[string]any) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		s.next++
		id = strconv.Itoa(s.next)
	}
	it, ok := s.items[id]
	if !ok {
		it = map[string]any{"id": id, "comments": []any{}}
		s.items[id] = it
	}
	for k, v := range fields {
		it[k] = v
	}
	s.touch(it)
	return id
}

// Stamp sets an item's update time, as several writes within one clock
// tick would (tests of ties across pages).
func (s *Service) Stamp(id string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.items[id]; ok {
		it["updated_at"] = at.UTC().Format(stamp)
	}
}

// Item returns a copy of an item (nil if absent).
func (s *Service) Item(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.items[id]
	if !ok {
		return nil
	}
	b, _ := json.Marshal(it)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// Len is the number of items.
func (s *Service) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items)
}

func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.Requests++
	token := s.Token
	s.mu.Unlock()
	if token != "" && r.Header.Get("Authorization") != token {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var written string
	s.mu.Lock()
	status, body := s.route(r, parts, &written)
	hook := s.OnWrite
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
	if written != "" && hook != nil {
		hook(written)
	}
}

func (s *Service) route(r *http.Request, parts []string, written *string) (int, any) {
	var in map[string]any
	if r.Body != nil && (r.Method == "POST" || r.Method == "PATCH") {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			return http.StatusBadRequest, map[string]any{"error": "malformed JSON"}
		}
	}
	switch {
	case r.Method == "GET" && len(parts) == 1 && parts[0] == "items":
		since, _ := time.Parse(time.RFC3339Nano, r.URL.Query().Get("since"))
		out := []any{}
		for _, it := range s.items {
			t, _ := time.Parse(time.RFC3339Nano, it["updated_at"].(string))
			if !t.Before(since) {
				out = append(out, it)
			}
		}
		sort.Slice(out, func(i, j int) bool {
			return out[i].(map[string]any)["updated_at"].(string) < out[j].(map[string]any)["updated_at"].(string)
		})
		return http.StatusOK, out
	case r.Method == "POST" && len(parts) == 1 && parts[0] == "items":
		s.next++
		id := strconv.Itoa(s.next)
		it := map[string]any{"id": id, "comments": []any{}}
		for k, v := range in {
			it[k] = v
		}
		s.touch(it)
		s.items[id] = it
		*written = id
		return http.StatusCreated, it
	case len(parts) >= 2 && parts[0] == "items":
		it, ok := s.items[parts[1]]
		if !ok {
			return http.StatusNotFound, map[string]any{"error": "no such item"}
		}
		switch {
		case r.Method == "GET" && len(parts) == 2:
			return http.StatusOK, it
		case r.Method == "PATCH" && len(parts) == 2:
			for k, v := range in {
				if k != "id" && k != "updated_at" && k != "comments" {
					it[k] = v
				}
			}
			s.touch(it)
			*written = parts[1]
			return http.StatusOK, it
		case r.Method == "POST" && len(parts) == 3 && parts[2] == "comments":
			s.comments++
			c := map[string]any{"id": "c" + strconv.Itoa(s.comments), "author": in["author"], "body": in["body"],
				"private": in["private"], "created_at": time.Now().UTC().Format(time.RFC3339Nano)}
			it["comments"] = append(it["comments"].([]any), c)
			s.touch(it)
			*written = parts[1]
			return http.StatusCreated, c
		}
	}
	return http.StatusNotFound, map[string]any{"error": "no such route"}
}
