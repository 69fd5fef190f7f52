-- Retention: every value of a `date` parameter in luigid's task history (luigi's db_task_history tables).
SELECT DISTINCT value FROM task_parameters WHERE name = 'date';
