// GitHub → Jira: the text, its address, and its comments.
replica.title = entity.title;
replica.body = entity.body;
replica.url = entity.url;
replica.number = entity.key;
replica.comments = entity.comments;
