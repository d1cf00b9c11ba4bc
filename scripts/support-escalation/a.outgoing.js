// Support → engineering: only what is listed here crosses over.
replica.title = entity.subject;
replica.description = entity.description;
replica.priority = entity.priority;
replica.ticket = entity.key;
replica.comments = entity.comments;
