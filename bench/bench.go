// Package bench holds what the floor server and the load tool share: the
// change payload, the trigger and the two scripts. The floor runs the same
// JavaScript on the same JSON as Duplex does end to end, without anything
// durable, so the ratio between them is the cost of durability and of
// Duplex's bookkeeping (twins, echo checks, audit).
package bench

import (
	"strconv"
	"strings"
	"time"
)

// Trigger is side a's trigger: every benchmark change matches it.
const Trigger = `"todev" in labels`

// Outgoing is side a's outgoing script.
const Outgoing = `replica.title = entity.title;
replica.status = entity.status;
replica.priority = {low: "p3", normal: "p2", high: "p1", urgent: "p0"}[entity.priority] || "p2";
replica.ref = entity.ref;
replica.description = entity.description;
`

// Incoming is side b's incoming script.
const Incoming = `if (ctx.firstSync) entity.state = "new";
entity.title = replica.title;
entity.priority = replica.priority;
entity.ref = replica.ref;
entity.body = replica.description;
`

// Payload is one change as the webhook body carries it: an item of the
// generic HTTP connector's default layout (id, updated_at, fields). ref is
// the change's sequence number, which the load tool finds again on side b.
func Payload(id string, seq int64, at time.Time) []byte {
	var b strings.Builder
	b.Grow(400)
	b.WriteString(`{"id":"`)
	b.WriteString(id)
	b.WriteString(`","updated_at":"`)
	b.WriteString(at.UTC().Format(time.RFC3339Nano))
	b.WriteString(`","title":"change `)
	b.WriteString(strconv.FormatInt(seq, 10))
	b.WriteString(`","ref":"`)
	b.WriteString(strconv.FormatInt(seq, 10))
	b.WriteString(`","status":"open","priority":"high","labels":["todev","web"],`)
	b.WriteString(`"description":"The export to CSV fails for reports with more than 10,000 rows; the customer attached a sample and needs it by Friday."}`)
	return []byte(b.String())
}
