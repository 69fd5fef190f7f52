-- The warehouse: a courses dimension, recommendations kept per date, and one load marker per date.
CREATE TABLE IF NOT EXISTS courses (
    course_id            bigint PRIMARY KEY,
    title                text,
    description          text,
    programming_language text NOT NULL
);

-- One partition per date: a date's load builds its partition whole, then swaps it in.
CREATE TABLE IF NOT EXISTS daily_recommendations (
    recommendation_date date             NOT NULL,
    user_id             bigint           NOT NULL,
    course_id           bigint           NOT NULL,
    rating              double precision NOT NULL,
    rank                smallint         NOT NULL,
    PRIMARY KEY (recommendation_date, user_id, rank)
) PARTITION BY LIST (recommendation_date);

-- A row here is the completion marker of a date: it commits in the same transaction as its data.
CREATE TABLE IF NOT EXISTS recommendation_loads (
    recommendation_date date             PRIMARY KEY,
    n_recommendations   bigint           NOT NULL,
    n_users             bigint           NOT NULL,
    loaded_at           timestamptz      NOT NULL DEFAULT now(),
    -- A day not over yet, loaded on request: the first run after the day ends replaces it.
    partial             boolean          NOT NULL DEFAULT false,
    -- The date's figures from its run: the source rows set aside as invalid, the largest invalid share of a
    -- table checked, the seconds its steps took, and the load's run (workflow.task_runs.run_id).
    n_invalid           bigint,
    invalid_share       double precision,
    duration_s          double precision,
    run_id              uuid,
    -- How the recommendations were made (language_rule or als), and how many users the factorization left to the
    -- case study's rule.
    method              text,
    n_fallback          bigint
);
-- A warehouse made by an older version gets the columns it lacks. Only then: ALTER TABLE locks the table even
-- when the column exists, which would make readers of the view wait, or deadlock, during every load.
DO $$
DECLARE
    missing record;
BEGIN
    FOR missing IN
        SELECT wanted.name, wanted.type
        FROM (VALUES ('partial', 'boolean NOT NULL DEFAULT false'), ('n_invalid', 'bigint'),
                     ('invalid_share', 'double precision'), ('duration_s', 'double precision'),
                     ('run_id', 'uuid'), ('method', 'text'), ('n_fallback', 'bigint')) AS wanted (name, type)
        WHERE NOT EXISTS (SELECT FROM information_schema.columns WHERE table_schema = current_schema()
                          AND table_name = 'recommendation_loads' AND column_name = wanted.name)
    LOOP
        EXECUTE 'ALTER TABLE recommendation_loads ADD COLUMN ' || quote_ident(missing.name) || ' ' || missing.type;
    END LOOP;
END $$;

-- The current recommendations: those of the newest loaded date.
CREATE OR REPLACE VIEW recommendations AS
SELECT user_id, course_id, rating, rank, recommendation_date
FROM daily_recommendations
WHERE recommendation_date = (SELECT max(recommendation_date) FROM recommendation_loads);

-- Each date's offline quality of both methods (one row per method): each user's newest valid rating held out, the
-- rest fitted. The date's rows are its completion marker: they commit whole, in one transaction.
CREATE TABLE IF NOT EXISTS recommendation_quality (
    recommendation_date date             NOT NULL,
    method              text             NOT NULL,
    partial             boolean          NOT NULL DEFAULT false,
    n_users             bigint           NOT NULL,
    n_held_out          bigint           NOT NULL,
    n_predicted         bigint           NOT NULL,
    rmse                double precision,
    mae                 double precision,
    n_relevant          bigint           NOT NULL,
    hit_rate            double precision,
    ndcg                double precision,
    coverage            double precision,
    personal_share      double precision,
    n_fallback          bigint,
    engine              text,
    run_id              uuid,
    evaluated_at        timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (recommendation_date, method)
);
