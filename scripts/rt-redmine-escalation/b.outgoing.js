// duplex:mapping: see the header of the target's incoming script
// Made by the mapping editor: change the mapping there. Editing this
// script by hand turns the direction into code (nothing is lost).
// Redmine → RT: the fields the mapping reads, and the comments.
replica.status = entity.status;
replica.url = entity.url;
// Public comments only: internal notes stay here.
replica.comments = entity.comments.filter(c => !c.private);
