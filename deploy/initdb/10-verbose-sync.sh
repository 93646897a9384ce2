#!/bin/sh
# Runs once, when the postgres container initialises its data directory (docker-entrypoint-initdb.d).
# A sample Odoo-like table, and what an administrator grants verbose-sync on a real CRM database:
# a role with REPLICATION and SELECT, and a publication created for it by the owner of the table.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v sync_password="$VERBOSE_SYNC_DB_PASSWORD" <<'SQL'
CREATE TABLE res_partner (
  id         serial PRIMARY KEY,
  name       text NOT NULL,
  phone      text,
  mobile     text,
  is_company boolean NOT NULL DEFAULT false,
  active     boolean NOT NULL DEFAULT true
);
INSERT INTO res_partner (name, mobile, phone, is_company) VALUES
  ('Amélie Durand', '06 12 34 56 78', NULL, false),
  ('Lucas Bernard', '+33 7 81 22 33 44', NULL, false),
  ('Chloé Petit', NULL, '01 42 68 53 00', false),
  ('Boulangerie Durand SARL', NULL, '01 40 20 50 50', true);

CREATE ROLE verbose_sync LOGIN REPLICATION PASSWORD :'sync_password';
GRANT SELECT ON res_partner TO verbose_sync;
CREATE PUBLICATION verbose_sync FOR TABLE res_partner;
SQL
