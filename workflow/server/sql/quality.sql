-- Both methods' offline quality figures of the newest $1 evaluated dates, oldest first.
SELECT recommendation_date AS date, method, partial, n_users, n_held_out, n_predicted, rmse, mae, n_relevant, hit_rate,
       ndcg, coverage, personal_share, n_fallback, engine, evaluated_at
FROM recommendation_quality
WHERE recommendation_date > (SELECT max(recommendation_date) FROM recommendation_quality) - $1::integer
ORDER BY recommendation_date, method
