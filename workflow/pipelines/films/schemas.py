"""The film pipeline's data: the columns each step reads and writes, its reject reasons and the warehouse's columns."""

from __future__ import annotations

import pyarrow as pa

from workflow.rules.ratings import RatingRoles

# The rental history the co-rental ranking reads: `rental` (as of the date) joined to `inventory`.
RENTAL_SCHEMA = pa.schema([("rental_id", pa.int64()), ("inventory_id", pa.int64()), ("customer_id", pa.int64())])
INVENTORY_SCHEMA = pa.schema([("inventory_id", pa.int64()), ("film_id", pa.int64())])
RENTED_AT = "rented_at"
RENTAL_COLUMNS = ["customer_id", "film_id", RENTED_AT]

# The ratings table ([films] rating_table): which columns play user and item, and a film's average rating and count.
RATING_SCHEMA = pa.schema([("customer_id", pa.int64()), ("film_id", pa.int64()), ("rating", pa.float64())])
RATING_ROLES = RatingRoles(
    user="customer_id", item="film_id", unknown_item="unknown_film", average="avg_rating", count="rating_count"
)

# What makes a film unusable; the first of these a row breaks is its reason.
FILM_REASONS = ["missing_film_id", "duplicate_film_id", "missing_rental_rate", "negative_rental_rate"]

# The columns the pipeline adds to the film table's own.
RATE_PARTS = ["rental_rate_dollar", "rental_rate_cents"]
AVERAGES_SCHEMA = pa.schema([("film_id", pa.int64()), ("avg_rating", pa.float64()), ("rating_count", pa.int64())])
RECOMMENDATIONS_SCHEMA = pa.schema([("film_id", pa.int64()), ("recommended_film_ids", pa.list_(pa.int64()))])
