-- The run history: one row per task run of every pipeline, successes and failures alike.
-- Made only when missing: CREATE SCHEMA IF NOT EXISTS asks for CREATE on the database even when the schema exists,
-- and the loader of config/warehouse_grants.sql has the schema made for it instead.
DO $$
BEGIN
    IF to_regnamespace('workflow') IS NULL THEN
        CREATE SCHEMA workflow;
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS workflow.task_runs (
    run_id        uuid             PRIMARY KEY,
    pipeline      text             NOT NULL,
    run_date      date             NOT NULL,
    task          text             NOT NULL,
    -- A day not over yet, computed on request (--partial-day).
    partial       boolean          NOT NULL DEFAULT false,
    engine        text,
    started_at    timestamptz      NOT NULL,
    finished_at   timestamptz      NOT NULL,
    duration_s    double precision NOT NULL,
    status        text             NOT NULL CHECK (status IN ('done', 'failed')),
    rows_in       bigint,
    rows_out      bigint,
    -- Rows set aside per reason ({"missing user_id": 3, ...}), and those of them that count as invalid.
    set_aside     jsonb,
    invalid_rows  bigint,
    invalid_share double precision,
    -- The one-line error of a failed run (no password, no traceback).
    error         text,
    host          text,
    -- Everything else the run record says (where the source was read, the warehouse, timings).
    details       jsonb            NOT NULL DEFAULT '{}',
    recorded_at   timestamptz      NOT NULL DEFAULT now(),
    -- Recorded by a later run, from the run record file, because the warehouse was unreachable then.
    from_file     boolean          NOT NULL DEFAULT false
);

CREATE INDEX IF NOT EXISTS task_runs_by_date ON workflow.task_runs (run_date, pipeline, finished_at);
