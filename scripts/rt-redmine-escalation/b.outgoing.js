// Redmine → RT: progress, the address, and public notes only.
replica.status = entity.status;
replica.url = entity.url;
replica.comments = entity.comments.filter(c => !c.private);
