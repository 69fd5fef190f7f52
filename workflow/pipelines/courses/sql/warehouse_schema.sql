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
    recommendation_date date        PRIMARY KEY,
    n_recommendations   bigint      NOT NULL,
    n_users             bigint      NOT NULL,
    loaded_at           timestamptz NOT NULL DEFAULT now(),
    -- A day not over yet, loaded on request: the first run after the day ends replaces it.
    partial             boolean     NOT NULL DEFAULT false
);
-- A warehouse made before partial days gets the column. Only then: ALTER TABLE locks the table even
-- when the column exists, which would make readers of the view wait, or deadlock, during every load.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM information_schema.columns WHERE table_schema = current_schema()
                   AND table_name = 'recommendation_loads' AND column_name = 'partial') THEN
        ALTER TABLE recommendation_loads ADD COLUMN partial boolean NOT NULL DEFAULT false;
    END IF;
END $$;

-- The current recommendations: those of the newest loaded date.
CREATE OR REPLACE VIEW recommendations AS
SELECT user_id, course_id, rating, rank, recommendation_date
FROM daily_recommendations
WHERE recommendation_date = (SELECT max(recommendation_date) FROM recommendation_loads);
