-- Whether the film pipeline's table exists.
SELECT to_regclass('store.film') IS NOT NULL
