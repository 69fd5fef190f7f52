-- The least privileges of the role that extracts from the application database. Run as its owner:
--   psql -v reader_password="$SOURCE_PASSWORD" -d datacamp_application -f config/source_grants.sql
-- Then SOURCE_DATABASE_URL=postgresql+psycopg2://recommendations_extractor:<password>@host/datacamp_application.
-- It reads the two tables the workflow extracts, and nothing else.

CREATE ROLE recommendations_extractor LOGIN PASSWORD :'reader_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"DBNAME" TO recommendations_extractor;
GRANT USAGE ON SCHEMA public TO recommendations_extractor;
GRANT SELECT ON courses, rating TO recommendations_extractor;
