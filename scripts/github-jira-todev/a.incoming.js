// Apply Jira progress to the GitHub issue: one status label at a time.
const map = {{status_map}};
const shown = map[replica.status];
if (shown) {
  const ours = Object.values(map).map(s => s.label).filter(Boolean);
  const labels = (entity.labels || []).filter(l => !ours.includes(l));
  if (shown.label) labels.push(shown.label);
  entity.labels = labels;
  if (shown.state) entity.state = shown.state;
} else {
  log("no GitHub label for Jira status", replica.status);
}
entity.comments = replica.comments.map(c => ({
  id: c.id,
  author: c.author,
  body: "[Jira] " + c.author + ": " + c.body,
}));
