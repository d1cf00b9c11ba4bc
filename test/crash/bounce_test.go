package crash

import (
	"database/sql"
	"testing"
)

// The bounce-back count decides on what an event carries that Duplex wrote,
// and on the state intake queued it for: an event queued for a person's
// change and applied after a read of its source again is a person's, even
// when that read found the change undone.
func TestBouncedDecidesOnTheQueuedState(t *testing.T) {
	str := func(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
	const resolved = `{"comments":[],"state":"resolved"}`
	const withOurs = `{"comments":[{"id":"29","body":"[support] ana: note"}],"state":"resolved"}`
	const ticket = `{"comments":[],"description":"d","priority":"high","ticket":"T-1","title":"s"}`
	const ticketOurs = `{"comments":[{"id":"7","body":"[engineering] dev: note"}],"description":"d","priority":"high","ticket":"T-1","title":"s"}`
	for _, c := range []struct {
		name      string
		dir, rep  string
		prev, src string
		want      bool
	}{
		{"Duplex's comment back, nothing else", "b_to_a", withOurs, resolved, `{"f":{"state":"resolved"}}`, true},
		{"queued for a state change, undone before the apply", "b_to_a", withOurs, resolved, `{"f":{"state":"in_progress"}}`, false},
		{"no queued state kept", "b_to_a", withOurs, resolved, "", true},
		{"the issue as Duplex created it", "b_to_a", `{"comments":[],"state":"new"}`, "", `{"f":{"state":"new"}}`, true},
		{"a person's comment", "b_to_a", `{"comments":[{"id":"30","body":"mine"}],"state":"resolved"}`, resolved, `{"f":{"state":"resolved"}}`, false},
		{"support: Duplex's comment back", "a_to_b", ticketOurs, ticket, `{"f":{"subject":"s","description":"d","priority":"high"}}`, true},
		{"support: queued for a new subject", "a_to_b", ticketOurs, ticket, `{"f":{"subject":"new","description":"d","priority":"high"}}`, false},
	} {
		if got := bounced(c.dir, c.rep, str(c.prev), str(c.src)); got != c.want {
			t.Errorf("%s: bounced = %v, want %v", c.name, got, c.want)
		}
	}
}
