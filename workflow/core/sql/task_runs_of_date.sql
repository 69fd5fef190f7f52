-- Every task run of a date, of every pipeline, in the order they finished.
SELECT run_id, pipeline, run_date, task, partial, engine, started_at, finished_at, duration_s, status, rows_in,
       rows_out, set_aside, invalid_rows, invalid_share, error, host, details, from_file
FROM workflow.task_runs
WHERE run_date = :run_date
ORDER BY finished_at, task;
