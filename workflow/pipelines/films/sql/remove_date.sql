-- Retention: remove a date's films (its marker goes in the same transaction).
DELETE FROM store.film_daily WHERE load_date = :load_date;
