// Apply an escalated Zendesk ticket to its Jira issue.
if (ctx.firstSync) {
  entity.issuetype = {{issue_type}};
}
entity.summary = replica.subject;
entity.description = (replica.description || "") + "\n\nEscalated from Zendesk ticket " + replica.ticket + ": " + replica.ticket_url;
const priority = {{priority_map}}[replica.priority];
if (priority) entity.priority = priority;
// Public replies become Jira comments; ids are kept so each is added once.
entity.comments = replica.comments.map(c => ({
  id: c.id,
  author: c.author,
  body: "[Zendesk] " + c.author + ": " + c.body,
}));
