-- Pagila-shaped tables of the film pipeline's demo source (the real Pagila declares more; these are what it reads).
DROP TABLE IF EXISTS film_rating, rental, inventory, film CASCADE;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_type WHERE typname = 'mpaa_rating') THEN
        CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');
    END IF;
    IF NOT EXISTS (SELECT FROM pg_type WHERE typname = 'year') THEN
        CREATE DOMAIN year AS integer CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155);
    END IF;
END $$;
CREATE TABLE film (
    film_id              integer PRIMARY KEY,
    title                text NOT NULL,
    description          text,
    release_year         year,
    language_id          integer NOT NULL,
    original_language_id integer,
    rental_duration      smallint NOT NULL DEFAULT 3,
    rental_rate          numeric(4,2) NOT NULL DEFAULT 4.99,
    length               smallint,
    replacement_cost     numeric(5,2) NOT NULL DEFAULT 19.99,
    rating               mpaa_rating DEFAULT 'G',
    last_update          timestamptz NOT NULL DEFAULT now(),
    special_features     text[],
    fulltext             tsvector
);
CREATE TABLE inventory (
    inventory_id integer PRIMARY KEY,
    film_id      integer NOT NULL,
    store_id     integer NOT NULL,
    last_update  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE rental (
    rental_id    integer PRIMARY KEY,
    rental_date  timestamptz NOT NULL,
    inventory_id integer NOT NULL,
    customer_id  integer NOT NULL,
    return_date  timestamptz,
    staff_id     integer NOT NULL,
    last_update  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE film_rating (
    customer_id integer,
    film_id     integer,
    rating      integer,
    rated_at    timestamptz
);
