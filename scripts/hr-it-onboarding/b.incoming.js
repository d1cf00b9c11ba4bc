// Open or update the employee's onboarding ticket.
// Bad HR data fails the event with what to fix (nothing is written; the
// row's next change, or a retry, syncs it).
if (!String(replica.name || "").trim()) fail("employee " + replica.employee + " has no name: fill it in HR");
if (replica.start_date && !/^\d{4}-\d{2}-\d{2}$/.test(replica.start_date)) {
  fail("employee " + replica.employee + ": start_date " + JSON.stringify(replica.start_date) + " is not a date (YYYY-MM-DD)");
}
const common = {{checklist_common}}, byRole = {{role_checklists}}, byEquipment = {{equipment_items}};
const role = String(replica.role || "").trim();
const checklist = [
  ...common,
  ...(byRole[role.toLowerCase()] || []),
  ...replica.equipment.map(e => byEquipment[e.toLowerCase()] || "Provide: " + e),
].map(item => "[ ] " + item).join("\n");
const who = replica.name + (replica.email ? " <" + replica.email + ">" : "");

entity.subject = "Onboarding: " + replica.name + (role ? " (" + role + ")" : "") +
  (replica.start_date ? ", starts " + replica.start_date : "");
// RT keeps Due in UTC and reads it back as RFC 3339: written the same way,
// an unchanged date is no change.
entity.due = replica.start_date ? replica.start_date + "T00:00:00Z" : "";

if (ctx.firstSync) {
  // The manager follows the ticket (IT's public replies reach them).
  if (/^[^@\s]+@[^@\s]+$/.test(replica.manager)) entity.requestors = [replica.manager];
  // RT takes the description on create only: later changes arrive as comments.
  entity.description = [
    "New hire: " + who,
    "Role: " + (role || "-"),
    "Manager: " + (replica.manager || "-"),
    "Start date: " + (replica.start_date || "-"),
    "Equipment: " + (replica.equipment.join(", ") || "-"),
    "HR record: " + replica.employee,
    "",
    "Checklist:",
    checklist,
  ].join("\n");
} else if (previous) {
  // What changed since the last sync, as an internal comment for IT (the
  // manager is not mailed). Its text names old and new values, so a retry
  // finds it and does not add it twice.
  const changes = [];
  if (previous.start_date !== replica.start_date) {
    changes.push("Start date changed from " + (previous.start_date || "-") + " to " + (replica.start_date || "-") + ".");
  }
  if (previous.role !== replica.role) changes.push("Role changed from " + (previous.role || "-") + " to " + (role || "-") + ".");
  const eq = l => (l || []).join(", ");
  if (eq(previous.equipment) !== eq(replica.equipment)) {
    changes.push("Equipment changed from " + (eq(previous.equipment) || "-") + " to " + (eq(replica.equipment) || "-") + ".");
  }
  if (previous.role !== replica.role || eq(previous.equipment) !== eq(replica.equipment)) {
    changes.push("", "Checklist now:", checklist);
  }
  if (changes.length > 0) {
    entity.comments = [...entity.comments, {body: "[HR] " + who + ": " + changes.join("\n"), private: true}];
  }
}
