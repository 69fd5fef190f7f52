-- Each pipeline's failed whole-day task runs of dates after its newest whole-day load ($1: pipelines, $2: their
-- newest loaded dates, null for none), oldest first: what makes a pipeline's freshness "failed".
SELECT runs.pipeline, runs.run_date, runs.task, runs.error, runs.finished_at
FROM workflow.task_runs AS runs
INNER JOIN unnest($1::text[], $2::date[]) AS newest (pipeline, loaded) ON newest.pipeline = runs.pipeline
WHERE runs.status = 'failed' AND NOT runs.partial AND (newest.loaded IS NULL OR runs.run_date > newest.loaded)
ORDER BY runs.run_date, runs.finished_at
