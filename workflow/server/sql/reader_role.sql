-- The server's read-only role on the embedded warehouse: created when missing, given the password kept in
-- <output>/postgres/reader.password. On other servers config/warehouse_grants.sql creates it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'recommendations_reader') THEN
        CREATE ROLE recommendations_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END
$$;
ALTER ROLE recommendations_reader WITH LOGIN PASSWORD %(password)s;
