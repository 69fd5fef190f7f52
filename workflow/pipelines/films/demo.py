"""A deterministic synthetic source shaped like Pagila (film, inventory, rental, film_rating), and its writing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd

from workflow.io.load import copy_in
from workflow.io.postgres import connect, table_exists
from workflow.pipelines.films.warehouse import sql

RATES = [Decimal("0.99"), Decimal("2.99"), Decimal("4.99")]
MPAA = ["G", "PG", "PG-13", "R", "NC-17"]
FEATURES = ["Trailers", "Commentaries", "Deleted Scenes", "Behind the Scenes"]
WORDS = ["Epic", "Drama", "Saga", "Story", "Documentary", "Yarn", "Tale", "Panorama", "Reflection", "Character"]


def demo_films(n_films: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Return `n_films` Pagila-shaped films (the tsvector `fulltext` is computed by the database)."""
    rng = np.random.default_rng(seed)
    film_id = np.arange(1, n_films + 1)
    features = ["{" + ",".join(f'"{name}"' for name in FEATURES if rng.random() < 0.5) + "}" for _ in film_id]
    return pd.DataFrame(
        {
            "film_id": film_id,
            "title": [f"{rng.choice(WORDS).upper()} {i}" for i in film_id],
            "description": [f'A {rng.choice(WORDS)} of a "Hero" who must find film {i}' for i in film_id],
            "release_year": 2006,
            "language_id": 1,
            "rental_duration": rng.integers(3, 8, n_films),
            "rental_rate": [RATES[i] for i in rng.integers(0, 3, n_films)],
            "length": rng.integers(46, 186, n_films),
            "replacement_cost": [Decimal(f"{cost}.99") for cost in rng.integers(9, 30, n_films)],
            "rating": rng.choice(MPAA, n_films),
            "special_features": features,
        }
    )


def demo_rentals(films: pd.DataFrame, n_rentals: int, until: dt.date, seed: int = 0) -> tuple[pd.DataFrame, ...]:
    """Return (inventory, rental): about 4 copies per film, and `n_rentals` rentals in the half year to `until`."""
    rng = np.random.default_rng(seed + 1)
    copies = rng.integers(0, 9, len(films))  # some films have no copy, like Pagila's
    inventory = pd.DataFrame({"film_id": np.repeat(films["film_id"].to_numpy(), copies)})
    inventory.insert(0, "inventory_id", np.arange(1, len(inventory) + 1))
    inventory["store_id"] = rng.integers(1, 3, len(inventory))
    n_customers = max(n_rentals // 27, 1)
    popularity = rng.pareto(1.5, len(inventory)) + 1
    end = pd.Timestamp(until, tz="UTC") + pd.Timedelta(days=1)
    rental = pd.DataFrame(
        {
            "rental_id": np.arange(1, n_rentals + 1),
            "rental_date": end - pd.to_timedelta(rng.integers(1, 182 * 86_400, n_rentals), unit="s"),
            "inventory_id": rng.choice(
                inventory["inventory_id"].to_numpy(), n_rentals, p=popularity / popularity.sum()
            ),
            "customer_id": rng.integers(1, n_customers + 1, n_rentals),
            "staff_id": rng.integers(1, 3, n_rentals),
        }
    )
    return inventory, rental.sort_values("rental_date", kind="stable").assign(rental_id=np.arange(1, n_rentals + 1))


def demo_ratings(rental: pd.DataFrame, inventory: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Return ratings 1..5 of about a tenth of the rentals, made a day after them."""
    rng = np.random.default_rng(seed + 2)
    rated = rental.sample(frac=0.1, random_state=seed).merge(inventory[["inventory_id", "film_id"]], on="inventory_id")
    return pd.DataFrame(
        {
            "customer_id": rated["customer_id"],
            "film_id": rated["film_id"],
            "rating": rng.integers(1, 6, len(rated)),
            "rated_at": rated["rental_date"] + pd.Timedelta(days=1),
        }
    )


def replace_film_tables(url: str, n_rentals: int = 16_000, until: dt.date | None = None, seed: int = 0) -> dict:
    """Recreate the demo's film, inventory, rental and film_rating tables; return their row counts."""
    films = demo_films(seed=seed)
    inventory, rental = demo_rentals(films, n_rentals, until or dt.date.today(), seed)
    ratings = demo_ratings(rental, inventory, seed)
    with connect(url) as connection:
        connection.exec_driver_sql(sql("source_schema"))
        for table, frame in (("film", films), ("inventory", inventory), ("rental", rental), ("film_rating", ratings)):
            copy_in(connection, table, frame)
        connection.exec_driver_sql("UPDATE film SET fulltext = to_tsvector('english', title || ' ' || description)")
    return {"film": len(films), "inventory": len(inventory), "rental": len(rental), "film_rating": len(ratings)}


def has_films(url: str) -> bool:
    """Return whether the films source already holds a film table."""
    return table_exists(url, "film")
