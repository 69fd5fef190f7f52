-- SELECT on exactly the relations the server reads, those that exist now (a load that recreates a table
-- drops its grants: the server runs this again when the reader is refused). Run as the superuser.
DO $$
DECLARE
    relation text;
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO recommendations_reader', current_database());
    GRANT USAGE ON SCHEMA public TO recommendations_reader;
    IF to_regnamespace('store') IS NOT NULL THEN
        GRANT USAGE ON SCHEMA store TO recommendations_reader;
    END IF;
    FOREACH relation IN ARRAY ARRAY[
        'public.courses', 'public.daily_recommendations', 'public.recommendation_loads',
        'public.recommendations', 'store.film'
    ] LOOP
        IF to_regclass(relation) IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON %s TO recommendations_reader', to_regclass(relation));
        END IF;
    END LOOP;
END
$$;
