// Apply a support ticket to the engineering issue.
if (ctx.firstSync) {
  entity.state = "new";
  entity.ticket_ref = replica.ticket;
}
entity.title = replica.title;
entity.body = (replica.description || "") + "\n\nEscalated from support ticket " + replica.ticket;
entity.priority = {{priority_map}}[replica.priority] || "normal";
// Comments are append-only: entries whose id is already linked are skipped by the engine.
entity.comments = (replica.comments || []).map(c => ({
  id: c.id,
  author: c.author,
  body: "[support] " + c.author + ": " + c.body,
}));
