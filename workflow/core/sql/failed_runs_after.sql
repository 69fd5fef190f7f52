-- A pipeline's failed whole-day task runs of dates after :after (every date when it is NULL), newest last.
SELECT run_date, task, error, finished_at
FROM workflow.task_runs
WHERE pipeline = :pipeline AND status = 'failed' AND NOT partial
  AND (CAST(:after AS date) IS NULL OR run_date > CAST(:after AS date))
ORDER BY run_date, finished_at;
