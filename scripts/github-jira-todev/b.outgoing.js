// Jira → GitHub: the status, and public comments only (GitHub has no
// internal notes and refuses to publish one).
replica.status = entity.status;
replica.comments = entity.comments.filter(c => !c.private);
