// Apply engineering progress to the RT ticket.
const status = {{status_map}}[replica.status];
if (status) {
  entity.status = status;
} else {
  log("no RT status for Redmine status", replica.status);
}
entity["Engineering URL"] = replica.url;
// Engineering notes arrive as internal RT comments, not mail to the requestor.
entity.comments = replica.comments.map(c => ({
  id: c.id,
  author: c.author,
  body: "[engineering] " + c.author + ": " + c.body,
  private: true,
}));
