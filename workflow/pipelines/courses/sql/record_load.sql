-- Mark a date loaded (the completion marker) with its figures, in the same transaction as its data.
INSERT INTO recommendation_loads (recommendation_date, n_recommendations, n_users, partial, n_invalid, invalid_share,
                                  duration_s, run_id, method, n_fallback)
VALUES (:recommendation_date, :n_recommendations, :n_users, :partial, :n_invalid, :invalid_share, :duration_s,
        CAST(:run_id AS uuid), :method, :n_fallback)
ON CONFLICT (recommendation_date) DO UPDATE
SET n_recommendations = EXCLUDED.n_recommendations, n_users = EXCLUDED.n_users, partial = EXCLUDED.partial,
    n_invalid = EXCLUDED.n_invalid, invalid_share = EXCLUDED.invalid_share, duration_s = EXCLUDED.duration_s,
    run_id = EXCLUDED.run_id, method = EXCLUDED.method, n_fallback = EXCLUDED.n_fallback, loaded_at = now();
