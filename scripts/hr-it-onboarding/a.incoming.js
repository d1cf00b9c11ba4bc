// Apply IT's progress to the employee.
const status = {{status_map}}[replica.status];
if (status) {
  entity.onboarding_status = status;
} else {
  log("no onboarding_status for RT status", replica.status);
}
// The notes keep HR's own text; IT's part starts at the marker line and is
// rewritten whole from the ticket each time, so it never grows twice.
const marker = "--- IT onboarding ";
const notes = String(entity.notes || "");
const cut = notes.indexOf(marker);
const own = (cut >= 0 ? notes.slice(0, cut) : notes).trimEnd();
const it = [
  marker + replica.ticket + " ---",
  replica.ticket_url,
  ...replica.replies.map(r => r.at + " " + r.author + ": " + r.body),
].join("\n");
entity.notes = own ? own + "\n\n" + it : it;
