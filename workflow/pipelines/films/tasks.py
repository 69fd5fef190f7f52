"""The film pipeline's Luigi tasks: from Pagila's film, inventory and rental tables to the warehouse's store.film.

Each run() imports the schemas, rules and warehouse code it uses (pyarrow, pandas): `luigi --module workflow` imports
every task, and a run that finds its targets complete never needs them.
"""

from __future__ import annotations

import logging

import luigi

from workflow import config, databases
from workflow.core.dated_load import DatedLoadTask
from workflow.core.tasks import ParquetTask
from workflow.io.postgres import table_exists
from workflow.io.urls import safe_url
from workflow.pipelines.films import PIPELINE

log = logging.getLogger("luigi-interface.workflow.films")
_reported: set[str] = set()  # missing tables already logged by this process


class FilmStep(ParquetTask):
    """A step of the film pipeline, writing one parquet target of the date on the chosen engine."""

    pipeline = PIPELINE


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
        self.extract(self.source_url(), settings.film_table, None, schema=settings.schema)


class ExtractedRentals(FilmStep):
    """Each rental made before the end of the date (UTC): its id, inventory item, customer and time."""

    def requires(self) -> SourceTable:
        return SourceTable(config.films().rental_table)

    def run(self) -> None:
        from workflow.pipelines.films.schemas import RENTAL_SCHEMA, RENTED_AT  # noqa: PLC0415

        settings = config.films()
        self.extract_as_of(
            self.source_url(), settings.rental_table, RENTAL_SCHEMA,
            schema=settings.schema, column=settings.rental_timestamp_column, stamp_as=RENTED_AT, what="rentals",
        )  # fmt: skip


class ExtractedInventory(FilmStep):
    """Each inventory item's film (the inventory has no history: a snapshot)."""

    def requires(self) -> SourceTable:
        return SourceTable(config.films().inventory_table)

    def run(self) -> None:
        from workflow.pipelines.films.schemas import INVENTORY_SCHEMA  # noqa: PLC0415

        settings = config.films()
        self.extract(self.source_url(), settings.inventory_table, INVENTORY_SCHEMA, schema=settings.schema)


class FilmRentalRates(FilmStep):
    """The films with their rental rate split into whole dollars and cents; unusable films set aside."""

    def requires(self) -> ExtractedFilms:
        return self.clone(ExtractedFilms)

    def run(self) -> None:
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415

        from workflow.pipelines.films.schemas import FILM_REASONS, RATE_PARTS  # noqa: PLC0415

        films = self.read(self.requires())
        kept, quarantined = self.rules.split_rental_rate(films)
        self.set_aside("films", self.facts["rows_in"], quarantined, FILM_REASONS)
        # The extracted types, exact (decimals, lists), and the two parts as int32 (Spark's frames carry these types).
        extracted = pq.read_schema(self.requires().output().path)  # a file: the extract always runs on the driver
        self.write(kept, schema=pa.schema([*extracted, *(pa.field(part, pa.int32()) for part in RATE_PARTS)]))


class ExtractedFilmRatings(FilmStep):
    """The ratings table ([films] rating_table) as it stood at the end of the date; no rows when there is none."""

    def requires(self) -> SourceTable | list:
        settings = config.films()
        return [SourceTable(settings.rating_table)] if settings.wait_for_rating_table and settings.rating_table else []

    def run(self) -> None:
        import pyarrow as pa  # noqa: PLC0415

        from workflow.pipelines.films.schemas import RATING_SCHEMA  # noqa: PLC0415
        from workflow.rules.ratings import RATED_AT  # noqa: PLC0415

        settings, url = config.films(), self.source_url()
        table = settings.rating_table
        if not table or not table_exists(url, table, schema=settings.schema):
            log.warning("no ratings table %r in %s: every film's average rating is NULL", table, safe_url(url))
            self.facts["source"] = f"no table {table!r}"
            self.write(RATING_SCHEMA.append(pa.field(RATED_AT, pa.timestamp("us", tz="UTC"))).empty_table())
            return
        self.extract_as_of(
            url, table, RATING_SCHEMA,
            schema=settings.schema, column=settings.rating_timestamp_column, stamp_as=RATED_AT, what="ratings",
        )  # fmt: skip


class FilmRatings(FilmStep):
    """Each rated film's average rating and number of ratings, from the ratings table when there is one."""

    def requires(self) -> dict[str, luigi.Task]:
        return {"ratings": self.clone(ExtractedFilmRatings), "films": self.clone(FilmRentalRates)}

    def run(self) -> None:
        from workflow.io.parquet import count_rows  # noqa: PLC0415
        from workflow.pipelines.films.schemas import AVERAGES_SCHEMA, RATING_ROLES  # noqa: PLC0415
        from workflow.rules.ratings import UNCOUNTED_REASONS  # noqa: PLC0415

        inputs = self.requires()
        n_ratings = count_rows(inputs["ratings"].output().path)
        if not n_ratings:
            self.write(AVERAGES_SCHEMA.empty_table())
            return
        ratings = self.read(inputs["ratings"])
        film_ids = self.read(inputs["films"], ["film_id"])
        rule = config.rules()
        valid, quarantined = self.rules.validate_film_ratings(ratings, film_ids, rule.min_rating, rule.max_rating)
        del ratings
        self.set_aside("film_ratings", n_ratings, quarantined, RATING_ROLES.reasons, UNCOUNTED_REASONS)
        self.write(self.rules.average_film_ratings(valid), schema=AVERAGES_SCHEMA)


class FilmRecommendations(FilmStep):
    """For each film, the other films most often rented by its customers ("customers who rented this also rented")."""

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "rentals": self.clone(ExtractedRentals),
            "inventory": self.clone(ExtractedInventory),
            "films": self.clone(FilmRentalRates),
        }

    def run(self) -> None:
        from workflow.pipelines.films.schemas import RECOMMENDATIONS_SCHEMA  # noqa: PLC0415

        inputs = self.requires()
        rentals = self.read(inputs["rentals"], ["rental_id", "inventory_id", "customer_id"])
        rented = self.rules.rented_films(rentals, self.read(inputs["inventory"]))
        film_ids = self.read(inputs["films"], ["film_id"])
        self.set_status_message("ranking co-rentals")
        found = self.rules.co_rental_recommendations(rented, film_ids, config.films().recommendations_per_film)
        self.write(found, schema=RECOMMENDATIONS_SCHEMA)


class FilmsTask(DatedLoadTask):
    """The date's films, rate parts, average ratings and recommendations, loaded into the warehouse's store.film."""

    pipeline = PIPELINE

    def requires(self) -> dict[str, luigi.Task]:
        if self.unreachable is not None:
            return {}
        kinds = {"films": FilmRentalRates, "ratings": FilmRatings, "recommendations": FilmRecommendations}
        return {name: self.clone(kind) for name, kind in kinds.items()}

    def run(self) -> None:
        import pyarrow.parquet as pq  # noqa: PLC0415

        from workflow.pipelines.films import rules, warehouse  # noqa: PLC0415

        self.raise_if_unreachable()
        # A few thousand films: read whole from the targets of either engine (a file, or a folder of parts).
        inputs = {name: pq.read_table(task.output().path) for name, task in self.requires().items()}
        films = rules.film_rows(inputs["films"], inputs["ratings"], inputs["recommendations"])
        self.set_status_message(f"loading {films.num_rows:,} films")
        url = databases.warehouse_url()
        loaded = warehouse.load_films(url, self.date, films, partial_day=self.partial_day, figures=self.figures())
        self.facts.update(rows_in=films.num_rows, rows_out=loaded, warehouse=safe_url(url))
        self.set_progress_percentage(100)


# Every task users may run by name, the load of a date first (the pipeline's declaration reads this).
TASKS = (
    FilmsTask, ExtractedFilms, ExtractedRentals, ExtractedInventory, ExtractedFilmRatings, FilmRentalRates,
    FilmRatings, FilmRecommendations, SourceTable,
)  # fmt: skip
