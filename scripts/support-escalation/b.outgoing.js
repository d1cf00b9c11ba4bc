// duplex:mapping: see the header of the target's incoming script
// Made by the mapping editor: change the mapping there. Editing this
// script by hand turns the direction into code (nothing is lost).
// engineering → support: the fields the mapping reads, and the comments.
replica.state = entity.state;
replica.comments = entity.comments;
