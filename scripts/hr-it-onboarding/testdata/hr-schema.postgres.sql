-- hr-schema.sql for PostgreSQL: the same table with PostgreSQL's types
-- (the sql connector's "postgres" driver; the same system settings with
-- "driver": "postgres" and the DSN in the secret "dsn"). hr-seed.sql loads
-- into it as it is.
CREATE TABLE employees (
  id                BIGSERIAL PRIMARY KEY,
  name              TEXT NOT NULL,
  email             TEXT,
  start_date        DATE,            -- read as a timestamp; a.outgoing.js keeps the day
  role              TEXT,
  manager           TEXT,            -- the manager's e-mail: the ticket's requestor
  equipment         TEXT,            -- comma-separated
  onboarding_status TEXT DEFAULT 'pending',
  notes             TEXT,
  updated_at        TIMESTAMPTZ
);
CREATE INDEX employees_updated ON employees (updated_at, id);
-- Every write moves updated_at unless it sets it itself (Duplex's own
-- writes do), so the HR application's writes are seen by polling.
CREATE FUNCTION employees_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' AND NEW.updated_at IS NULL
     OR TG_OP = 'UPDATE' AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
    NEW.updated_at := clock_timestamp();
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER employees_touch BEFORE INSERT OR UPDATE ON employees
  FOR EACH ROW EXECUTE FUNCTION employees_touch();
