// Apply an incident to its work item.
if (ctx.firstSync) {
  entity.work_item_type = {{work_item_type}};
  const area = {{area_path}};
  if (area) entity.area_path = area;
}
entity.title = replica.number + ": " + replica.short_description;
entity.description = (replica.description || "") + "\n\nFrom ServiceNow incident " + replica.number + ": " + replica.url;
const priority = {{priority_map}}[replica.priority];
if (priority) entity.priority = priority;
entity.comments = replica.comments.map(c => ({
  id: c.id,
  author: c.author,
  body: "[ServiceNow " + (c.private ? "work note" : "comment") + "] " + c.author + ": " + c.body,
}));
