-- The first and last loaded dates, how many there are, and whether the date $1 is one of them.
SELECT min(recommendation_date), max(recommendation_date), count(*),
       coalesce(bool_or(recommendation_date = $1::date), false)
FROM recommendation_loads
