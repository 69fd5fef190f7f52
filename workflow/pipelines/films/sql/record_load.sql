-- Mark a date loaded (the completion marker) with its figures, in the same transaction as its rows.
INSERT INTO store.film_loads (load_date, n_films, partial, n_invalid, invalid_share, duration_s, run_id)
VALUES (:load_date, :n_films, :partial, :n_invalid, :invalid_share, :duration_s, CAST(:run_id AS uuid))
ON CONFLICT (load_date) DO UPDATE
SET n_films = EXCLUDED.n_films, partial = EXCLUDED.partial, n_invalid = EXCLUDED.n_invalid,
    invalid_share = EXCLUDED.invalid_share, duration_s = EXCLUDED.duration_s, run_id = EXCLUDED.run_id,
    loaded_at = now();
