-- Retention: remove the tasks of a date (their `date` parameter) from luigid's task history, with their parameters
-- and events (the foreign keys are checked at the end of the statement, once all three are gone).
WITH dated AS (
    SELECT task_id AS id FROM task_parameters WHERE name = 'date' AND value = :date
), events AS (
    DELETE FROM task_events WHERE task_id IN (SELECT id FROM dated)
), parameters AS (
    DELETE FROM task_parameters WHERE task_id IN (SELECT id FROM dated)
)
DELETE FROM tasks WHERE id IN (SELECT id FROM dated);
