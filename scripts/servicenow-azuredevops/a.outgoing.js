// ServiceNow → Azure DevOps: the incident's text, priority and address, and
// its journal (additional comments and work notes, labelled: engineering is
// internal staff).
replica.number = entity.key;
replica.url = entity.url;
replica.short_description = entity.short_description;
replica.description = entity.description;
replica.priority = entity.priority;
replica.comments = entity.comments;
