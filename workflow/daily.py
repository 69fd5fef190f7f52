"""The daily run: every declared pipeline's load of a date, so cron and backfills start one task per date."""

from __future__ import annotations

import datetime as dt

import luigi

from workflow import registry


class DailyPipelines(luigi.WrapperTask):
    """The date loaded into the warehouse by every pipeline of the registry (and their other dated loads)."""

    date = luigi.DateParameter()
    partial_day = luigi.BoolParameter(default=False, description="compute a day that has not ended (UTC)")

    def requires(self) -> list[luigi.Task]:
        return [
            task(date=self.date, partial_day=self.partial_day)
            for pipeline in registry.pipelines()
            for task in pipeline.daily_tasks()
        ]

    @classmethod
    def bulk_complete(cls, parameter_tuples: list[dt.date]) -> list[dt.date]:
        """Return the dates every pipeline has loaded (one warehouse query per pipeline, for RangeDaily)."""
        done = set(parameter_tuples)
        for pipeline in registry.pipelines():
            for task in pipeline.daily_tasks():
                done &= set(task.bulk_complete(list(parameter_tuples)))
        return [date for date in parameter_tuples if date in done]
