// HR → IT: what IT needs to prepare. onboarding_status and notes are IT's
// answer (written by a.incoming.js) and stay out of the replica, so writing
// them sends nothing back to RT.
const list = v => (Array.isArray(v) ? v : String(v || "").split(","))
  .map(s => String(s).trim()).filter(s => s !== "");
replica.employee = entity.key;
replica.name = entity.name || "";
replica.email = entity.email || "";
// A DATE column reads as a timestamp in PostgreSQL: the day is enough.
replica.start_date = String(entity.start_date || "").slice(0, 10);
replica.role = entity.role || "";
replica.manager = entity.manager || "";
replica.equipment = list(entity.equipment);
