-- A pipeline's newest whole-day load: its date and when its own load committed. {marker} and {date_column} are the
-- pipeline's load marker table and its date column, from workflow.registry (quoted identifiers, never input).
SELECT {date_column}, loaded_at FROM {marker} WHERE NOT partial ORDER BY {date_column} DESC LIMIT 1
