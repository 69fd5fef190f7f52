-- The warehouse's films: every loaded date's rows in store.film_daily, one marker per date in
-- store.film_loads, and the view store.film holding the newest loaded date's rows.
-- Made only when missing: CREATE SCHEMA IF NOT EXISTS asks for CREATE on the database even when the schema exists,
-- and the loader of config/warehouse_grants.sql has the schema made for it instead.
DO $$
BEGIN
    IF to_regnamespace('store') IS NULL THEN
        CREATE SCHEMA store;
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS store.film_daily (
    load_date            date             NOT NULL,
    film_id              integer          NOT NULL,
    title                text,
    description          text,
    release_year         integer,
    language_id          integer,
    original_language_id integer,
    rental_duration      smallint,
    rental_rate          numeric(4,2)     NOT NULL,
    length               smallint,
    replacement_cost     numeric(5,2),
    rating               text,
    last_update          timestamptz,
    special_features     text[],
    fulltext             text,
    rental_rate_dollar   integer          NOT NULL,
    rental_rate_cents    integer          NOT NULL,
    avg_rating           double precision,
    rating_count         integer          NOT NULL,
    recommended_film_ids integer[]        NOT NULL,
    PRIMARY KEY (load_date, film_id)
);

-- A row here is the completion marker of a date: it commits in the same transaction as its rows.
CREATE TABLE IF NOT EXISTS store.film_loads (
    load_date date        PRIMARY KEY,
    n_films   bigint      NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    -- A day not over yet, loaded on request: the first run after the day ends replaces it.
    partial   boolean     NOT NULL DEFAULT false,
    -- The date's figures from its run: the source rows set aside as invalid, the largest invalid share of a
    -- table checked, the seconds its steps took, and the load's run (workflow.task_runs.run_id).
    n_invalid     bigint,
    invalid_share double precision,
    duration_s    double precision,
    run_id        uuid
);
-- A warehouse made by an older version gets the columns it lacks (only then: ALTER TABLE locks the table).
DO $$
DECLARE
    missing record;
BEGIN
    FOR missing IN
        SELECT wanted.name, wanted.type
        FROM (VALUES ('n_invalid', 'bigint'), ('invalid_share', 'double precision'),
                     ('duration_s', 'double precision'), ('run_id', 'uuid')) AS wanted (name, type)
        WHERE NOT EXISTS (SELECT FROM information_schema.columns WHERE table_schema = 'store'
                          AND table_name = 'film_loads' AND column_name = wanted.name)
    LOOP
        EXECUTE 'ALTER TABLE store.film_loads ADD COLUMN ' || quote_ident(missing.name) || ' ' || missing.type;
    END LOOP;
END $$;

-- The current films: those of the newest loaded date, keyed by film_id.
CREATE OR REPLACE VIEW store.film AS
SELECT film_id, title, description, release_year, language_id, original_language_id, rental_duration, rental_rate,
       length, replacement_cost, rating, last_update, special_features, fulltext, rental_rate_dollar,
       rental_rate_cents, avg_rating, rating_count, recommended_film_ids, load_date
FROM store.film_daily
WHERE load_date = (SELECT max(load_date) FROM store.film_loads);
