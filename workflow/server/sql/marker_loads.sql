-- A pipeline's load rows of the dates $1 to $2, each row whole. {marker} and {date_column} are its load marker table
-- and date column, from workflow.registry (quoted identifiers, never input).
SELECT {date_column}, to_jsonb(marker) FROM {marker} AS marker WHERE {date_column} BETWEEN $1::date AND $2::date
