// Apply engineering progress to the incident: the state through state_map,
// and the work item's comments as work notes (never customer-visible).
const state = {{state_map}}[replica.state];
if (state) {
  entity.state = state;
} else {
  log("no ServiceNow state for Azure DevOps state", replica.state);
}
entity.comments = replica.comments.map(c => ({
  id: c.id,
  author: c.author,
  body: "[Azure DevOps " + replica.work_item + "] " + c.author + ": " + c.body,
  private: true,
}));
