// RT → Redmine: the ticket's text and priority, and its correspondence.
// RT comments are internal to support and stay in RT.
replica.subject = entity.subject;
replica.description = entity.description;
replica.priority = entity.priority;
replica.ticket = entity.key;
replica.ticket_url = entity.url;
replica.comments = entity.comments.filter(c => !c.private);
