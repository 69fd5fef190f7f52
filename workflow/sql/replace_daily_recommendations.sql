-- Replace exactly one date's recommendations with the staged rows.
DELETE FROM daily_recommendations WHERE recommendation_date = :recommendation_date;
INSERT INTO daily_recommendations (recommendation_date, user_id, course_id, rating, rank)
SELECT :recommendation_date, user_id, course_id, rating, rank FROM staged_recommendations;
INSERT INTO recommendation_loads (recommendation_date, n_recommendations, n_users)
SELECT :recommendation_date, count(*), count(DISTINCT user_id) FROM staged_recommendations
ON CONFLICT (recommendation_date) DO UPDATE
SET n_recommendations = EXCLUDED.n_recommendations, n_users = EXCLUDED.n_users, loaded_at = now();
