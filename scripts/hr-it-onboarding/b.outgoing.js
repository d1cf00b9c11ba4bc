// IT → HR: the ticket's status and IT's public replies. RT comments are
// internal to IT (and hold Duplex's own change notes) and stay in RT.
replica.status = entity.status;
replica.ticket = entity.key;
replica.ticket_url = entity.url;
replica.replies = entity.comments.filter(c => !c.private).map(c => ({
  id: c.id, author: c.author, at: String(c.created_at || "").slice(0, 10), body: String(c.body || "").trim(),
}));
