// duplex:mapping {"from":"engineering","to":"support","rows":[{"target":"status","kind":"map","source":"state","map":{{status_map}}}],"comments":{"sync":true,"prefix":"[engineering] "}}
// Made by the mapping editor: change the mapping there. Editing this
// script by hand turns the direction into code (nothing is lost).
// Apply engineering to support: the mapped fields and the comments.
// state → status; a value the map does not list leaves the status as it is.
const status = mapValue(replica.state, {{status_map}}, null);
if (status !== null) {
  entity.status = status;
} else {
  log("no support status for engineering state", replica.state);
}
entity.comments = (replica.comments || []).map(c => ({
  id: c.id,
  author: c.author,
  body: "[engineering] " + c.author + ": " + c.body,
}));
