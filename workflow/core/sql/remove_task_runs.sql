-- Retention: remove a date's task runs from the run history.
DELETE FROM workflow.task_runs WHERE run_date = :run_date;
