-- Retention: the dates of the run history older than the first date kept.
SELECT DISTINCT run_date FROM workflow.task_runs WHERE run_date < :before;
