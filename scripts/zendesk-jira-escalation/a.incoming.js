// Apply engineering progress to the Zendesk ticket.
const status = {{status_map}}[replica.status];
if (status) {
  entity.status = status;
} else {
  log("no Zendesk status for Jira status", replica.status);
}
// Jira comments arrive as internal notes unless jira_comments_public.
entity.comments = replica.comments.map(c => ({
  id: c.id,
  author: c.author,
  body: "[Jira " + replica.issue + "] " + c.author + ": " + c.body,
  private: !{{jira_comments_public}},
}));
