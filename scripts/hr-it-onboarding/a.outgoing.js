// HR → IT: what IT needs to prepare. onboarding_status and notes are IT's
// answer (written by a.incoming.js) and stay out of the replica, so writing
// them sends nothing back to RT.
const list = v => (Array.isArray(v) ? v : String(v || "").split(","))
  .map(s => String(s).trim()).filter(s => s !== "");
replica.employee = entity.key;
replica.name = entity.name || "";
replica.email = entity.email || "";
// A DATE column reads as a timestamp in PostgreSQL and MariaDB: the day is
// enough. Other text goes as it is (b.incoming.js refuses what is no date).
const start = String(entity.start_date || "").trim();
replica.start_date = /^\d{4}-\d{2}-\d{2}[T ]/.test(start) ? start.slice(0, 10) : start;
replica.role = entity.role || "";
replica.manager = entity.manager || "";
replica.equipment = list(entity.equipment);
