-- Mark a date loaded (the completion marker), in the same transaction as its data.
INSERT INTO recommendation_loads (recommendation_date, n_recommendations, n_users, partial)
VALUES (:recommendation_date, :n_recommendations, :n_users, :partial)
ON CONFLICT (recommendation_date) DO UPDATE
SET n_recommendations = EXCLUDED.n_recommendations, n_users = EXCLUDED.n_users, partial = EXCLUDED.partial,
    loaded_at = now();
