// Apply a GitHub issue to its Jira issue.
if (ctx.firstSync) {
  entity.issuetype = {{issue_type}};
}
entity.summary = replica.title;
entity.description = (replica.body || "") + "\n\nFrom GitHub issue " + replica.number + ": " + replica.url;
entity.comments = replica.comments.map(c => ({
  id: c.id,
  author: c.author,
  body: "[GitHub] " + c.author + ": " + c.body,
}));
