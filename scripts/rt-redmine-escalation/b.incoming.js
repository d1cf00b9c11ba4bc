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
// Correspondence becomes public notes; ids are kept so each is added once.
entity.comments = replica.comments.map(c => ({
  id: c.id,
  author: c.author,
  body: "[RT] " + c.author + ": " + c.body,
}));
