// Engineering → support: progress and comments.
replica.state = entity.state;
replica.comments = entity.comments;
