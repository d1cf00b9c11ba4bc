// Azure DevOps → ServiceNow: the state and the discussion.
replica.state = entity.state;
replica.work_item = entity.key;
replica.url = entity.url;
replica.comments = entity.comments;
