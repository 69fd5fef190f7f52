-- Retention: the number of task runs of a date in the run history.
SELECT count(*) FROM workflow.task_runs WHERE run_date = :run_date;
