-- SELECT on exactly the relations the server reads (the relations parameter: schema.name each, those the
-- pipelines of workflow.registry own and the run history workflow.task_runs), those that
-- exist now (a load that recreates a table drops its grants: the server runs this again when the reader is
-- refused), and USAGE on their schemas. Run as the superuser.
DO $$
DECLARE
    relation text;
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %%I TO recommendations_reader', current_database());
    FOREACH relation IN ARRAY %(relations)s::text[] LOOP
        IF to_regnamespace(split_part(relation, '.', 1)) IS NOT NULL THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %%I TO recommendations_reader', split_part(relation, '.', 1));
        END IF;
        IF to_regclass(relation) IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON %%s TO recommendations_reader', to_regclass(relation));
        END IF;
    END LOOP;
END
$$;
