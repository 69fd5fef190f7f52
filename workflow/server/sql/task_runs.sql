-- The last run of each task of each pipeline's dates $1 to $2, whole-day and partial-day runs apart, with the number
-- of runs of its date (every attempt).
SELECT DISTINCT ON (pipeline, run_date, partial, task)
       pipeline, run_date, partial, task, status, engine, finished_at, duration_s, set_aside, invalid_share, error,
       run_id, count(*) OVER (PARTITION BY pipeline, run_date) AS runs
FROM workflow.task_runs
WHERE run_date BETWEEN $1::date AND $2::date
ORDER BY pipeline, run_date, partial, task, finished_at DESC
