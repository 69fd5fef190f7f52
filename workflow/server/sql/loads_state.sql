-- What changes with every load, replacement or removal: the newest date, the last commit and the number of loads.
SELECT max(recommendation_date), max(loaded_at), count(*) FROM recommendation_loads
