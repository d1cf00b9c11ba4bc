-- Seed rows for trying hr-it-onboarding (after hr-schema.sql). The first
-- three start soon and open tickets; the last is onboarded already
-- (onboarding_status done), which the template's trigger leaves alone.
INSERT INTO employees (name, email, start_date, role, manager, equipment, onboarding_status, notes) VALUES
  ('Ana Lima',     'ana.lima@example.com',     '2027-01-04', 'engineer', 'carla.diaz@example.com', 'laptop, monitor',        'pending', 'Prefers a Linux laptop.'),
  ('Ben Okafor',   'ben.okafor@example.com',   '2027-01-11', 'sales',    'dana.wu@example.com',    'laptop, phone, headset', 'pending', NULL),
  ('Chen Rossi',   'chen.rossi@example.com',   '2027-02-01', 'designer', 'carla.diaz@example.com', 'laptop, drawing tablet', 'pending', NULL),
  ('Dora Nilsson', 'dora.nilsson@example.com', '2025-03-03', 'support',  'eli.park@example.com',   'laptop',                 'done',    'Onboarded in 2025.');
