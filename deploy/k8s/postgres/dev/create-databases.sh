#!/bin/bash
# Run once by the postgres image on an empty data directory: one role and one database per part,
# each role owning only its own database. Passwords come from the <part>-database Secrets.
set -euo pipefail
for part in identity catalog exchange workflow evaluation portal gateway; do
  var="${part^^}_PASSWORD"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$part" -v password="${!var}" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
