// RT → Redmine: the ticket's text and priority, and its correspondence.
// RT comments are internal to support and stay in RT.
replica.subject = entity.subject;
replica.description = entity.description;
replica.priority = entity.priority;
replica.ticket = entity.key;
replica.ticket_url = entity.url;
replica.comments = entity.comments.filter(c => !c.private);
// The status only when rt_status_map is set: else RT's own status moves
// (new → open on a reply) would queue events that change nothing.
if (Object.keys({{rt_status_map}}).length > 0) replica.status = entity.status;
