-- One task run in the history; recording the same run twice (a file replayed twice) keeps the first.
INSERT INTO workflow.task_runs (
    run_id, pipeline, run_date, task, partial, engine, started_at, finished_at, duration_s, status, rows_in, rows_out,
    set_aside, invalid_rows, invalid_share, error, host, details, from_file
) VALUES (
    CAST(:run_id AS uuid), :pipeline, :run_date, :task, :partial, :engine, :started_at, :finished_at, :duration_s,
    :status, :rows_in, :rows_out, CAST(:set_aside AS jsonb), :invalid_rows, :invalid_share, :error, :host,
    CAST(:details AS jsonb), :from_file
)
ON CONFLICT (run_id) DO NOTHING;
