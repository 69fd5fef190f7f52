-- Retention: the number of tasks of a date (their `date` parameter) in luigid's task history.
SELECT count(*) FROM task_parameters WHERE name = 'date' AND value = :date;
