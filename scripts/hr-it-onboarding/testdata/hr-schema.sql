-- The HR side of the hr-it-onboarding template, for SQLite (the sql
-- connector's "sqlite" driver). The system's settings:
--   {"driver": "sqlite", "dsn": "hr.db", "table": "employees", "key_prefix": "E-",
--    "fields": [{"name": "name"}, {"name": "email"}, {"name": "start_date"}, {"name": "role"},
--               {"name": "manager"}, {"name": "equipment", "type": "list"},
--               {"name": "onboarding_status"}, {"name": "notes"}]}
-- PostgreSQL: hr-schema.postgres.sql. MariaDB is not tried (the same table
-- with start_date DATE and updated_at DATETIME(6) in UTC should do).
CREATE TABLE employees (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  name              TEXT NOT NULL,
  email             TEXT,
  start_date        TEXT,            -- YYYY-MM-DD
  role              TEXT,            -- engineer, sales, support, finance, ... (role_checklists)
  manager           TEXT,            -- the manager's e-mail: the ticket's requestor
  equipment         TEXT,            -- comma-separated: laptop, monitor, phone (equipment_items)
  onboarding_status TEXT DEFAULT 'pending',          -- written from the RT status (status_map)
  notes             TEXT,            -- HR's text; IT's public replies go below "--- IT onboarding"
  updated_at        TEXT             -- every write moves it: Duplex's polling reads it
);
CREATE INDEX employees_updated ON employees (updated_at, id);
-- Writes by the HR application that leave updated_at alone still count as
-- changes (the sql connector sets it itself on its own writes).
CREATE TRIGGER employees_touch AFTER UPDATE ON employees
  WHEN NEW.updated_at IS OLD.updated_at
  BEGIN
    UPDATE employees SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
  END;
CREATE TRIGGER employees_stamp AFTER INSERT ON employees
  WHEN NEW.updated_at IS NULL
  BEGIN
    UPDATE employees SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id;
  END;
