// Zendesk → Jira: the ticket's text, priority and address, and its public
// replies. Internal notes stay in Zendesk.
replica.subject = entity.subject;
replica.description = entity.description;
replica.priority = entity.priority;
replica.ticket = entity.key;
replica.ticket_url = entity.url;
replica.comments = entity.comments.filter(c => !c.private);
