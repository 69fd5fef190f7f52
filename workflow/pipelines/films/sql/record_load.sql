-- Mark a date loaded (the completion marker), in the same transaction as its rows.
INSERT INTO store.film_loads (load_date, n_films, partial)
VALUES (:load_date, :n_films, :partial)
ON CONFLICT (load_date) DO UPDATE
SET n_films = EXCLUDED.n_films, partial = EXCLUDED.partial, loaded_at = now();
