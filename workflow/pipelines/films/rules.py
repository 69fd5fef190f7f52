"""The film pipeline's rules, pure: frames in, frames out, no database, file or configuration."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workflow.pipelines.films.schemas import RATING_ROLES, RENTAL_COLUMNS, RENTED_AT
from workflow.rules import ratings as ratings_rules
from workflow.rules.ids import codes, combine, int64_ids, positions
from workflow.rules.quality import split_by_checks


def _cents(rate: object) -> int | None:
    """Return a rate as a whole number of cents, exactly, or None when it is missing or not a whole number of cents."""
    if rate is None or (isinstance(rate, float) and np.isnan(rate)) or rate is pd.NA:
        return None
    try:
        # A float goes through its shortest repr (0.1 -> "0.1"), never its binary expansion.
        cents = (rate if isinstance(rate, Decimal) else Decimal(repr(rate) if isinstance(rate, float) else rate)) * 100
    except (InvalidOperation, TypeError, ValueError):
        return None
    return int(cents) if cents.is_finite() and cents == cents.to_integral_value() else None


def split_rental_rate(films: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the films with `rental_rate_dollar` and `rental_rate_cents` added, and those set aside with a reason.

    The parts are computed exactly from the decimal rate: 4.99 -> 4 and 99, 0.5 -> 0 and 50. Set
    aside, by the first rule broken: a missing film_id (`missing_film_id`), a film_id held by
    several rows (`duplicate_film_id`, every copy), a missing rate or one that is not a whole number
    of cents (`missing_rental_rate`), a negative rate (`negative_rental_rate`).
    """
    cents = pd.array([_cents(rate) for rate in films["rental_rate"]], dtype="Int64")
    missing_id = films["film_id"].isna().to_numpy()
    repeated_id = ~missing_id & films["film_id"].duplicated(keep=False).to_numpy()
    missing_rate = cents.isna()
    negative = ~missing_rate & (cents.fillna(0) < 0).to_numpy(dtype=bool)
    kept, quarantined = split_by_checks(
        films.assign(_cents=cents),
        [
            ("missing_film_id", missing_id),
            ("duplicate_film_id", repeated_id),
            ("missing_rental_rate", np.asarray(missing_rate, dtype=bool)),
            ("negative_rental_rate", negative),
        ],
    )
    total = kept.pop("_cents").astype("int64")
    kept = kept.assign(rental_rate_dollar=total // 100, rental_rate_cents=total % 100)
    kept = kept.sort_values("film_id", kind="stable").reset_index(drop=True)
    return kept, quarantined.drop(columns="_cents")


def validate_film_ratings(
    ratings: pd.DataFrame, film_ids: pd.Series, min_rating: float, max_rating: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the valid film ratings, and the others with the first rule they break as `reason` (rules.ratings)."""
    return ratings_rules.validate_ratings(ratings, film_ids, min_rating, max_rating, RATING_ROLES)


def average_film_ratings(ratings: pd.DataFrame) -> pd.DataFrame:
    """Return each rated film's mean rating (`avg_rating`) and number of ratings (`rating_count`), by film_id."""
    return ratings_rules.average_ratings(ratings, RATING_ROLES)


def rented_films(rentals: pd.DataFrame, inventory: pd.DataFrame) -> pd.DataFrame:
    """Return the customer_id, film_id (and rented_at, if any) of each rental of a known copy, by rental_id."""
    columns = RENTAL_COLUMNS if RENTED_AT in rentals.columns else RENTAL_COLUMNS[:2]
    # A rental without a copy matches none (pandas would match a missing inventory_id with a missing one).
    rented = rentals.dropna(subset=["inventory_id"]).merge(inventory[["inventory_id", "film_id"]], on="inventory_id")
    return rented.sort_values("rental_id", kind="stable")[columns].reset_index(drop=True)


def co_rental_recommendations(
    rentals: pd.DataFrame, film_ids: pd.Series | np.ndarray, per_film: int = 3, pair_budget: int | None = None
) -> pd.DataFrame:
    """Return, for every film of film_ids, the `per_film` other films rented by the most customers who also rented it.

    "Customers who rented this also rented": a customer counts once per film, however often they
    rented it; ties go to the lower film_id; a film nobody co-rented gets an empty list. Rentals of
    films not in film_ids, or missing their customer or film, are ignored.

    Memory: the pairs are built per chunk of anchor films, each chunk holding at most about
    `pair_budget` (customer, anchor, partner) triples, by default the number R of distinct
    (customer, film) rentals. A single film's triples number at most R (each of its customers brings
    the films they rented), so memory stays O(R): it follows the rentals, never films squared.
    """
    known = np.unique(np.asarray(film_ids, dtype=np.int64))
    n_films = len(known)
    both = rentals[["customer_id", "film_id"]].notna().all(axis=1).to_numpy()
    film = positions(known, int64_ids(rentals["film_id"])[both])
    customer = int64_ids(rentals["customer_id"])[both][film >= 0]
    (customer,), coding = codes(customer)
    keys = np.unique(combine(customer, coding.size, film[film >= 0], n_films))  # distinct, by customer then film
    customer, film = keys // max(n_films, 1), keys % max(n_films, 1)
    del keys
    n_rented = np.bincount(customer, minlength=coding.size)  # films per customer
    first = np.cumsum(n_rented) - n_rented  # where each customer's films start in `film`
    by_film = np.argsort(film, kind="stable")  # the rentals grouped by anchor film
    film_start = np.searchsorted(film[by_film], np.arange(n_films + 1))
    work = np.concatenate([[0], np.cumsum(np.bincount(film, weights=n_rented[customer], minlength=n_films))])
    budget = max(pair_budget or len(film), 1)
    anchors, partners = [], []
    low = 0
    while low < n_films:
        high = max(int(np.searchsorted(work, work[low] + budget, side="right")) - 1, low + 1)  # whole films only
        rows = by_film[film_start[low] : film_start[high]]
        top_anchor, top_partner = _top_partners(
            film, first, n_rented, customer[rows], film[rows], n_films=n_films, per_film=per_film
        )
        anchors.append(top_anchor)
        partners.append(top_partner)
        low = high
    anchor = np.concatenate(anchors) if anchors else np.zeros(0, dtype=np.int64)
    partner = np.concatenate(partners) if partners else np.zeros(0, dtype=np.int64)
    bounds = np.searchsorted(anchor, np.arange(n_films + 1))
    ids = known[partner]
    lists = [ids[bounds[i] : bounds[i + 1]].tolist() for i in range(n_films)]
    return pd.DataFrame({"film_id": known, "recommended_film_ids": pd.Series(lists, dtype=object)})


def _top_partners(
    film: np.ndarray, first: np.ndarray, n_rented: np.ndarray, customer: np.ndarray, anchor: np.ndarray, *,
    n_films: int, per_film: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Return (anchor, partner) codes of each anchor's top partners, best first, for rentals (customer, anchor)."""
    repeats = n_rented[customer]
    total = int(repeats.sum())
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    partner = film[np.repeat(first[customer], repeats) + offset]
    del offset
    anchor = np.repeat(anchor, repeats)
    other = partner != anchor
    pair, count = np.unique(combine(anchor[other], n_films, partner[other], n_films), return_counts=True)
    del partner, anchor, other
    anchor, partner = pair // max(n_films, 1), pair % max(n_films, 1)
    order = np.lexsort((partner, -count, anchor))
    anchor, partner = anchor[order], partner[order]
    starts = np.concatenate([[True], anchor[1:] != anchor[:-1]]) if len(anchor) else np.zeros(0, dtype=bool)
    rank = np.arange(len(anchor)) - np.maximum.accumulate(np.where(starts, np.arange(len(anchor)), 0))
    keep = rank < per_film
    return anchor[keep], partner[keep]


def film_rows(rates: pa.Table, averages: pa.Table, recommendations: pa.Table) -> pa.Table:
    """Return the warehouse's rows: each film's columns and rate parts, its average rating, and its recommendations.

    A film nobody rated has a NULL average and a count of 0; one missing from the recommendations
    gets an empty list.
    """
    film_id = rates.column("film_id").cast(pa.int64())
    rated = pc.index_in(film_id, value_set=averages.column("film_id").cast(pa.int64()))
    recommended = pc.index_in(film_id, value_set=recommendations.column("film_id").cast(pa.int64()))
    lists = recommendations.column("recommended_film_ids").take(recommended)
    rows = (
        rates.append_column("avg_rating", averages.column("avg_rating").take(rated).cast(pa.float64()))
        .append_column("rating_count", pc.fill_null(averages.column("rating_count").take(rated), 0).cast(pa.int64()))
        .append_column("recommended_film_ids", pc.fill_null(lists, pa.scalar([], lists.type)))
    )
    return rows.sort_by("film_id")
