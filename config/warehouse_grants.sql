-- The least privileges of the warehouse roles. Run as the warehouse's owner or a superuser:
--   psql -v loader_password="$LOADER_PASSWORD" -v reader_password="$READER_PASSWORD" -d dwh -f config/warehouse_grants.sql
-- Then DWH_DATABASE_URL=postgresql+psycopg2://recommendations_loader:<password>@host/dwh.
--
-- recommendations_loader runs the loads: it creates and owns the warehouse's tables and views
-- (courses, daily_recommendations and its per-date partitions, recommendation_loads,
-- recommendations in schema public; the film pipeline's store.film_daily, store.film_loads and
-- store.film; the run history workflow.task_runs), swaps partitions, and stages rows in temporary
-- tables. It is no superuser, creates no roles, databases or schemas (store and workflow are made
-- for it here), and reaches no other database.
-- recommendations_reader is what applications and the read server (SERVER_DATABASE_URL) use: it
-- reads what the loader makes, and writes nothing.

CREATE ROLE recommendations_loader LOGIN PASSWORD :'loader_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
CREATE ROLE recommendations_reader LOGIN PASSWORD :'reader_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;

REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"DBNAME" TO recommendations_loader;
GRANT CONNECT ON DATABASE :"DBNAME" TO recommendations_reader;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO recommendations_loader;
GRANT USAGE ON SCHEMA public TO recommendations_reader;

CREATE SCHEMA IF NOT EXISTS store AUTHORIZATION recommendations_loader;
CREATE SCHEMA IF NOT EXISTS workflow AUTHORIZATION recommendations_loader;
GRANT USAGE, CREATE ON SCHEMA store, workflow TO recommendations_loader;  -- made by another role earlier: still usable
GRANT USAGE ON SCHEMA store, workflow TO recommendations_reader;

-- What the loader creates, the reader may read (the views run with the loader's rights).
ALTER DEFAULT PRIVILEGES FOR ROLE recommendations_loader IN SCHEMA public, store, workflow
    GRANT SELECT ON TABLES TO recommendations_reader;
