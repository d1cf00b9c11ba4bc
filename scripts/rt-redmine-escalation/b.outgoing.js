// duplex:mapping {"from":"Redmine","to":"RT","rows":[{"target":"status","kind":"map","source":"status","map":{{status_map}}},{"target":"Engineering URL","kind":"field","source":"url"}],"comments":{"sync":true,"prefix":"[engineering] ","private":true,"public_only":true}}
// Made by the mapping editor: change the mapping there. Editing this
// script by hand turns the direction into code (nothing is lost).
// Redmine → RT: the fields the mapping reads, and the comments.
replica.status = entity.status;
replica.url = entity.url;
// Public comments only: internal notes stay here.
replica.comments = entity.comments.filter(c => !c.private);
