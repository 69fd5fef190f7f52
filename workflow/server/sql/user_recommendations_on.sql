-- A user's recommendations of one loaded date, best first, as user_recommendations.sql returns the current ones.
-- $1: user id, $2: threshold, $3: date.
SELECT courses.course_id, courses.title, daily.rating,
       daily.rating > $2 AS above, daily.recommendation_date
FROM daily_recommendations AS daily
INNER JOIN courses ON courses.course_id = daily.course_id
WHERE daily.recommendation_date = $3 AND daily.user_id = $1
  AND EXISTS (SELECT FROM recommendation_loads WHERE recommendation_date = $3)
ORDER BY daily.rating DESC, daily.rank
