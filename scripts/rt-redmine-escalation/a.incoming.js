// duplex:mapping {"from":"Redmine","to":"RT","rows":[{"target":"status","kind":"map","source":"status","map":{{status_map}}},{"target":"Engineering URL","kind":"field","source":"url"}],"comments":{"sync":true,"prefix":"[engineering] ","private":true,"public_only":true}}
// Made by the mapping editor: change the mapping there. Editing this
// script by hand turns the direction into code (nothing is lost).
// Apply Redmine to RT: the mapped fields and the comments.
// status → status; a value the map does not list leaves the status as it is.
const status = mapValue(replica.status, {{status_map}}, null);
if (status !== null) {
  entity.status = status;
} else {
  log("no RT status for Redmine status", replica.status);
}
entity["Engineering URL"] = replica.url;
// Comments arrive as internal notes where the target has them.
entity.comments = (replica.comments || []).map(c => ({
  id: c.id,
  author: c.author,
  body: "[engineering] " + c.author + ": " + c.body,
  private: true,
}));
