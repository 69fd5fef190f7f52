-- A date's quality figures of one method; the date's rows were deleted first, in the same transaction.
INSERT INTO recommendation_quality (recommendation_date, method, partial, n_users, n_held_out, n_predicted, rmse, mae,
                                    n_relevant, hit_rate, ndcg, coverage, personal_share, n_fallback, engine, run_id)
VALUES (:recommendation_date, :method, :partial, :n_users, :n_held_out, :n_predicted, :rmse, :mae, :n_relevant,
        :hit_rate, :ndcg, :coverage, :personal_share, :n_fallback, :engine, CAST(:run_id AS uuid))
