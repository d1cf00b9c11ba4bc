package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/duplexsync/duplex/engine/store"
)

// KindCheck validates a connector kind's settings and the names of the
// secrets given (connectors.Registry).
type KindCheck interface {
	Validate(kind string, settings json.RawMessage, secretNames []string) error
}

// WithKinds makes the service check each system's kind and settings against
// the connectors this build has; without it (tests, apply over a folder
// validated already) they are not checked.
func (s *Service) WithKinds(k KindCheck) *Service {
	s.kinds = k
	return s
}

// checkSystem validates a system's row before it is saved: the fields every
// path must respect, then its kind's settings, then what its settings reach
// (the store fence and the team's outbound policy) when an engine checks.
func (s *Service) checkSystem(ctx context.Context, sys store.System, secretNames []string) error {
	if strings.TrimSpace(sys.Name) == "" {
		return invalid("name is required")
	}
	if strings.TrimSpace(sys.Kind) == "" {
		return invalid("kind is required (for example \"sql\")")
	}
	if sys.TeamID == 0 {
		return invalid("the system's team is required")
	}
	if set := strings.TrimSpace(sys.Settings); set != "" && set[0] != '{' {
		return invalid("settings must be a JSON object")
	}
	// 0 is the engine's default interval (a folder that leaves it out).
	if sys.PollIntervalMS != 0 && (sys.PollIntervalMS < 100 || sys.PollIntervalMS > 86_400_000) {
		return invalid("poll_interval_ms must be between 100 and 86400000")
	}
	if sys.RatePerSecond < 0 || sys.RateBurst < 0 {
		return invalid("rate_per_second and rate_burst must not be negative (0 = unlimited)")
	}
	if s.kinds != nil {
		settings := json.RawMessage(sys.Settings)
		if len(settings) == 0 {
			settings = json.RawMessage("{}")
		}
		if err := s.kinds.Validate(sys.Kind, settings, secretNames); err != nil {
			return err
		}
	}
	if s.check != nil {
		return s.check.CheckSystem(ctx, sys)
	}
	return nil
}

// CreateSystem validates sys (its Secrets sealed already; secretNames are
// the names given) and creates it with its audit entry in one transaction.
func (s *Service) CreateSystem(ctx context.Context, actor string, sys *store.System, secretNames []string) error {
	sys.Name = strings.TrimSpace(sys.Name)
	if err := s.checkSystem(ctx, *sys, secretNames); err != nil {
		return err
	}
	return s.teamChange(ctx, actor, "system.create", sys.TeamID, func(tx *store.Store) (string, error) {
		if err := tx.CreateSystem(ctx, sys); err != nil {
			return "", err
		}
		return fmt.Sprintf("system %d %q (%s)", sys.ID, sys.Name, sys.Kind), nil
	})
}

// UpdateSystem saves after in place of before (the row as read): its kind
// and team cannot change. secretNames are the secrets given (nil: kept);
// secretChanges word what changed of them for the audit entry, names only,
// never values. The engine reopens the system's connector once committed.
func (s *Service) UpdateSystem(ctx context.Context, actor string, before, after store.System, secretNames, secretChanges []string) (store.System, error) {
	after.ID, after.Name = before.ID, strings.TrimSpace(after.Name)
	if after.Kind != before.Kind {
		return after, invalid("kind cannot change (%s); create a new system", before.Kind)
	}
	if after.TeamID != before.TeamID {
		return after, invalid("a system cannot move to another team; create it there")
	}
	if err := s.checkSystem(ctx, after, secretNames); err != nil {
		return after, err
	}
	var fields []string
	if after.Name != before.Name {
		fields = append(fields, fmt.Sprintf("name %q → %q", before.Name, after.Name))
	}
	if after.Settings != before.Settings {
		fields = append(fields, "settings")
	}
	if after.PollIntervalMS != before.PollIntervalMS {
		fields = append(fields, fmt.Sprintf("poll_interval_ms %d → %d", before.PollIntervalMS, after.PollIntervalMS))
	}
	if after.RatePerSecond != before.RatePerSecond {
		fields = append(fields, fmt.Sprintf("rate_per_second %g → %g", before.RatePerSecond, after.RatePerSecond))
	}
	if after.RateBurst != before.RateBurst {
		fields = append(fields, fmt.Sprintf("rate_burst %d → %d", before.RateBurst, after.RateBurst))
	}
	fields = append(fields, secretChanges...)
	if len(fields) == 0 {
		fields = append(fields, "unchanged")
	}
	err := s.teamChange(ctx, actor, "system.update", after.TeamID, func(tx *store.Store) (string, error) {
		return fmt.Sprintf("system %d %q: %s", after.ID, after.Name, strings.Join(fields, ", ")), tx.UpdateSystem(ctx, &after)
	})
	if err == nil && s.eng != nil {
		s.eng.ReloadSystem(after.ID)
	}
	return after, err
}

// DeleteSystem deletes a system and audits it in one transaction.
func (s *Service) DeleteSystem(ctx context.Context, actor string, sys store.System) error {
	err := s.teamChange(ctx, actor, "system.delete", sys.TeamID, func(tx *store.Store) (string, error) {
		return fmt.Sprintf("system %d %q", sys.ID, sys.Name), tx.DeleteSystem(ctx, sys.ID)
	})
	if err == nil && s.eng != nil {
		s.eng.ReloadSystem(sys.ID)
	}
	return err
}

// SecretChanges words, names only, what replacing the secrets named old by
// those named given changes.
func SecretChanges(old, given []string) []string {
	var out []string
	keep := map[string]bool{}
	for _, n := range given {
		keep[n] = true
		out = append(out, fmt.Sprintf("secret %q (new value)", n))
	}
	for _, n := range old {
		if !keep[n] {
			out = append(out, fmt.Sprintf("secret %q removed", n))
		}
	}
	return out
}
