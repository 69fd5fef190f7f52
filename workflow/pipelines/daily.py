"""The daily run: every pipeline's load of a date, so cron and backfills start one task per date."""

from __future__ import annotations

import datetime as dt

import luigi

from workflow.pipelines.courses.tasks import RecommendationsTask
from workflow.pipelines.films.tasks import FilmsTask

PIPELINES = (RecommendationsTask, FilmsTask)


class DailyPipelines(luigi.WrapperTask):
    """The date's course recommendations and films, both loaded into the warehouse."""

    date = luigi.DateParameter()
    partial_day = luigi.BoolParameter(default=False, description="compute a day that has not ended (UTC)")

    def requires(self) -> list[luigi.Task]:
        return [pipeline(date=self.date, partial_day=self.partial_day) for pipeline in PIPELINES]

    @classmethod
    def bulk_complete(cls, parameter_tuples: list[dt.date]) -> list[dt.date]:
        """Return the dates every pipeline has loaded (one warehouse query per pipeline, for RangeDaily)."""
        done = set(parameter_tuples)
        for pipeline in PIPELINES:
            done &= set(pipeline.bulk_complete(list(parameter_tuples)))
        return [date for date in parameter_tuples if date in done]
