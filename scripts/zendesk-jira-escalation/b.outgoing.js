// Jira → Zendesk: the status and public comments only (Jira internal
// comments stay in Jira).
replica.status = entity.status;
replica.issue = entity.key;
replica.comments = entity.comments.filter(c => !c.private);
