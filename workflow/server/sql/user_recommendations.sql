-- A user's current recommendations, best first: the case study's recommendations_for_user query (ties by rank),
-- every row with whether it passes the threshold, so that the same round trip tells an unknown user (no rows).
-- $1: user id, $2: threshold.
SELECT courses.course_id, courses.title, recommendations.rating,
       recommendations.rating > $2 AS above, recommendations.recommendation_date
FROM recommendations
INNER JOIN courses ON courses.course_id = recommendations.course_id
WHERE recommendations.user_id = $1
ORDER BY recommendations.rating DESC, recommendations.rank
