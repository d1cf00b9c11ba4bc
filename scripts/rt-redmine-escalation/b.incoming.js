// Apply an escalated RT ticket to its Redmine issue.
if (ctx.firstSync) {
  const project = {{project}}, tracker = {{tracker}};
  if (project) entity.project = project;
  if (tracker) entity.tracker = tracker;
}
entity.subject = replica.subject;
entity.description = (replica.description || "") + "\n\nEscalated from RT ticket " + replica.ticket + ": " + replica.ticket_url;
const rtPriority = Number(replica.priority) || 0;
const level = {{priority_map}}.find(([min]) => rtPriority >= min);
if (level) entity.priority = level[1];
// RT status → Redmine status, for the RT statuses rt_status_map lists. Not
// when the status already stands for that RT status (status_map):
// an RT status Duplex wrote from Redmine ("Closed" → "resolved") never
// moves the issue back ("resolved" → "Resolved").
const toRedmine = {{rt_status_map}}[replica.status];
if (toRedmine && !ctx.firstSync && {{status_map}}[entity.status] !== replica.status) entity.status = toRedmine;
// Correspondence becomes public notes; ids are kept so each is added once.
entity.comments = replica.comments.map(c => ({
  id: c.id,
  author: c.author,
  body: "[RT] " + c.author + ": " + c.body,
}));
