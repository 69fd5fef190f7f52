"""The film pipeline's Luigi tasks: from Pagila's film, inventory and rental tables to the warehouse's store.film."""

from __future__ import annotations

import datetime as dt
import logging

import luigi
import pyarrow as pa
import pyarrow.parquet as pq

from workflow import config, databases
from workflow.core.dated_load import DatedLoadTask
from workflow.core.tasks import ParquetTask, end_of_day, refuse_unfinished_day
from workflow.engines import pandas_engine
from workflow.io.extract import extract_table
from workflow.io.postgres import has_column
from workflow.io.typed_extract import extract_whole_table, table_exists
from workflow.io.urls import safe_url
from workflow.pipelines.films import PIPELINE, rules, warehouse
from workflow.pipelines.films.schemas import (
    AVERAGES_SCHEMA,
    FILM_REASONS,
    INVENTORY_SCHEMA,
    RATED_AT,
    RATING_REASONS,
    RATING_SCHEMA,
    RECOMMENDATIONS_SCHEMA,
    RENTAL_COLUMNS,
    RENTAL_SCHEMA,
    RENTED_AT,
    UNCOUNTED_REASONS,
)  # fmt: skip

log = logging.getLogger("luigi-interface.workflow.films")
_reported: set[str] = set()  # missing tables already logged by this process


class FilmStep(ParquetTask):
    """A step of the film pipeline: it runs on the pandas engine whichever is chosen (its rules have no Spark form)."""

    pipeline = PIPELINE

    @property
    def engine(self) -> pandas_engine.PandasEngine:
        return pandas_engine.ENGINE


class SourceTableTarget(luigi.Target):
    """Exists when the films database holds the table; when it does not, says so once, in one line."""

    def __init__(self, table: str) -> None:
        self.table = table

    def exists(self) -> bool:
        url, schema = databases.url_of(PIPELINE.source), config.films().schema
        if table_exists(url, self.table, schema=schema):
            return True
        if self.table not in _reported:
            _reported.add(self.table)
            log.warning("source table %s.%s does not exist in %s: waiting for it", schema, self.table, safe_url(url))
        return False


class SourceTable(luigi.ExternalTask):
    """A table of the films database the pipeline reads, present (nothing runs until it is)."""

    table = luigi.Parameter()

    def output(self) -> SourceTableTarget:
        return SourceTableTarget(self.table)


class ExtractedFilms(FilmStep):
    """Every column of the film table, in exact types (decimals, lists, enums and domains as their base types)."""

    def requires(self) -> SourceTable:
        return SourceTable(config.films().film_table)

    def run(self) -> None:
        settings = config.films()
        self.set_status_message("extracting films")
        self.write(extract_whole_table(databases.url_of(PIPELINE.source), settings.film_table, schema=settings.schema))
        self.facts["source"] = f"snapshot taken {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


class ExtractedRentals(FilmStep):
    """Each rental made before the end of the date (UTC): its customer, film (through inventory) and time."""

    def requires(self) -> list[SourceTable]:
        return [SourceTable(config.films().rental_table), SourceTable(config.films().inventory_table)]

    def run(self) -> None:
        settings, url = config.films(), databases.url_of(PIPELINE.source)
        column = settings.rental_timestamp_column
        if has_column(url, settings.rental_table, column, schema=settings.schema):
            refuse_unfinished_day(self, "rentals")
        rentals, as_of = extract_table(
            url, settings.rental_table, RENTAL_SCHEMA, schema=settings.schema,
            timestamp_column=column, before=end_of_day(self.date), timestamp_as=RENTED_AT,
        )  # fmt: skip
        inventory, _ = extract_table(url, settings.inventory_table, INVENTORY_SCHEMA, schema=settings.schema)
        joined = rentals.join(inventory, "inventory_id", join_type="inner").sort_by("rental_id")
        self.facts["source"] = f"as of {end_of_day(self.date):%Y-%m-%d %H:%M} UTC" if as_of else "snapshot"
        self.facts["rentals_without_inventory"] = rentals.num_rows - joined.num_rows
        self.write(joined.select(RENTAL_COLUMNS if as_of else RENTAL_COLUMNS[:2]))


class FilmRentalRates(FilmStep):
    """The films with their rental rate split into whole dollars and cents; unusable films set aside."""

    def requires(self) -> ExtractedFilms:
        return self.clone(ExtractedFilms)

    def run(self) -> None:
        films = self.read(self.requires())
        kept, quarantined = rules.split_rental_rate(films)
        self.set_aside("films", len(films), quarantined, FILM_REASONS)
        schema = pq.read_schema(self.requires().output().path)
        schema = schema.append(pa.field("rental_rate_dollar", pa.int32())).append(
            pa.field("rental_rate_cents", pa.int32())
        )
        self.write(pa.Table.from_pandas(kept, schema=schema, preserve_index=False))


class FilmRatings(FilmStep):
    """Each rated film's average rating and number of ratings, from the ratings table when there is one."""

    def requires(self) -> dict[str, luigi.Task]:
        settings = config.films()
        waits = settings.wait_for_rating_table and settings.rating_table
        return {
            "films": self.clone(FilmRentalRates),
            **({"table": SourceTable(settings.rating_table)} if waits else {}),
        }

    def run(self) -> None:
        settings, url = config.films(), databases.url_of(PIPELINE.source)
        table, column = settings.rating_table, settings.rating_timestamp_column or None
        if not table or not table_exists(url, table, schema=settings.schema):
            log.warning("no ratings table %r in %s: every film's average rating is NULL", table, safe_url(url))
            self.facts["source"] = f"no table {table!r}"
            self.write(AVERAGES_SCHEMA.empty_table())
            return
        if column and has_column(url, table, column, schema=settings.schema):
            refuse_unfinished_day(self, "ratings")
        ratings, as_of = extract_table(
            url, table, RATING_SCHEMA, schema=settings.schema,
            timestamp_column=column, before=end_of_day(self.date), timestamp_as=RATED_AT,
        )  # fmt: skip
        self.facts["source"] = f"as of {end_of_day(self.date):%Y-%m-%d %H:%M} UTC" if as_of else "snapshot"
        film_ids = self.read(self.requires()["films"], ["film_id"])["film_id"]
        rule = config.rules()
        valid, quarantined = rules.validate_film_ratings(
            ratings.to_pandas(), film_ids, rule.min_rating, rule.max_rating
        )
        self.set_aside("film_ratings", ratings.num_rows, quarantined, RATING_REASONS, UNCOUNTED_REASONS)
        self.write(
            pa.Table.from_pandas(rules.average_film_ratings(valid), schema=AVERAGES_SCHEMA, preserve_index=False)
        )


class FilmRecommendations(FilmStep):
    """For each film, the other films most often rented by its customers ("customers who rented this also rented")."""

    def requires(self) -> dict[str, luigi.Task]:
        return {"rentals": self.clone(ExtractedRentals), "films": self.clone(FilmRentalRates)}

    def run(self) -> None:
        rentals = self.read(self.requires()["rentals"], ["customer_id", "film_id"])
        film_ids = self.read(self.requires()["films"], ["film_id"])["film_id"]
        self.set_status_message(f"ranking co-rentals of {len(rentals):,} rentals")
        found = rules.co_rental_recommendations(rentals, film_ids, config.films().recommendations_per_film)
        self.write(pa.Table.from_pandas(found, schema=RECOMMENDATIONS_SCHEMA, preserve_index=False))


class FilmsTask(DatedLoadTask):
    """The date's films, rate parts, average ratings and recommendations, loaded into the warehouse's store.film."""

    pipeline = PIPELINE
    engine = FilmStep.engine

    def requires(self) -> dict[str, luigi.Task]:
        if self.unreachable is not None:
            return {}
        kinds = {"films": FilmRentalRates, "ratings": FilmRatings, "recommendations": FilmRecommendations}
        return {name: self.clone(kind) for name, kind in kinds.items()}

    def run(self) -> None:
        self.raise_if_unreachable()
        inputs = {name: pq.read_table(task.output().path) for name, task in self.requires().items()}
        films = rules.film_rows(inputs["films"], inputs["ratings"], inputs["recommendations"])
        self.set_status_message(f"loading {films.num_rows:,} films")
        url = databases.warehouse_url()
        loaded = warehouse.load_films(url, self.date, films, partial_day=self.partial_day)
        self.facts.update(rows_in=films.num_rows, rows_out=loaded, warehouse=safe_url(url))
        self.set_progress_percentage(100)


# Every task users may run by name, the load of a date first (the pipeline's declaration reads this).
TASKS = (FilmsTask, ExtractedFilms, ExtractedRentals, FilmRentalRates, FilmRatings, FilmRecommendations, SourceTable)
