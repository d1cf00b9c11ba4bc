// Apply engineering progress to the support ticket.
const status = {{status_map}}[replica.state];
if (status) {
  entity.status = status;
} else {
  log("no support status for engineering state", replica.state);
}
entity.comments = (replica.comments || []).map(c => ({
  id: c.id,
  author: c.author,
  body: "[engineering] " + c.author + ": " + c.body,
}));
