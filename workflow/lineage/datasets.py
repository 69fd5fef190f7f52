"""A task run's input and output datasets, named as OpenLineage's naming conventions say, with their facets.

Parquet targets are `file` datasets named by their path; their schema, row and null counts come from the files'
footers (nothing else is read). PostgreSQL tables are `postgres://host:port` datasets named
`database.schema.table`; their schema comes from one information_schema query per database and event.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import luigi
import pyarrow.parquet as pq
import sqlalchemy as sa
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.naming.dataset import LocalFileSystem, Postgres
from sqlalchemy.engine import make_url

from workflow import config, databases
from workflow.io.files import ParquetTarget, part_files
from workflow.io.postgres import ONE_ATTEMPT, connect
from workflow.io.urls import safe_url
from workflow.rules.ratings import UNCOUNTED_REASONS

log = logging.getLogger("luigi-interface.workflow.lineage")

COLUMNS_SQL = """
SELECT table_schema, table_name, column_name, data_type, udt_name FROM information_schema.columns
WHERE table_schema || '.' || table_name = ANY(:tables) ORDER BY table_schema, table_name, ordinal_position
"""


def inputs(task: Any, record: dict[str, Any] | None) -> list[InputDataset]:
    """Return the run's inputs: the parquet targets of the tasks it requires, and the source table it extracts.

    The first parquet input is the table the task validates, when it sets rows aside (the others are lookups):
    its set-aside reasons and invalid share are its dataQualityAssertions.
    """
    found = []
    for target in _parquet_targets(task.requires()):
        path, naming = Path(target.path), LocalFileSystem(path=target.path)
        dataset = InputDataset(namespace=naming.get_namespace(), name=naming.get_name())
        if target.exists():
            dataset.facets["schema"] = parquet_schema(path)
            dataset.inputFacets["dataQualityMetrics"] = parquet_metrics(path)
        found.append(dataset)
    if record is not None and found and "set_aside" in record:
        found[0].inputFacets["dataQualityAssertions"] = assertions(record)
    facts = record if record is not None else getattr(task, "facts", {})
    if facts.get("source_table") and facts.get("source_database"):
        source = table_dataset(facts["source_database"], facts["source_table"], InputDataset)
        if record is not None and record.get("status") == "done":
            _add_schemas(_source_url(task, facts["source_database"]), {facts["source_table"]: source})
        found.append(source)
    return found


def outputs(task: Any, record: dict[str, Any] | None) -> list[OutputDataset]:
    """Return the run's outputs: its parquet target, or the warehouse tables its load writes; with their schema and
    statistics once the run is done (the rows of the load's first table are the record's rows_out)."""
    done = record is not None and record.get("status") == "done"
    target = task.output()
    if isinstance(target, ParquetTarget):
        path, naming = Path(target.path), LocalFileSystem(path=target.path)
        dataset = OutputDataset(namespace=naming.get_namespace(), name=naming.get_name())
        if done and target.exists():
            dataset.facets["schema"] = parquet_schema(path)
            dataset.outputFacets["outputStatistics"] = parquet_statistics(path)
        return [dataset]
    tables = task.writes() if hasattr(task, "writes") else ()
    if not tables:
        return []
    url = _warehouse_url(record)
    if url is None:
        return []
    found = {table: table_dataset(safe_url(url), table, OutputDataset) for table in tables}
    if done:
        _add_schemas(url, found)
        if record.get("rows_out") is not None:
            statistics = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=record["rows_out"]
            )
            found[tables[0]].outputFacets["outputStatistics"] = statistics
    return list(found.values())


def table_dataset(url: str, table: str, kind: type) -> Any:
    """Return a PostgreSQL table (`schema.table`) of the database at `url` as a dataset of the kind (input, output)."""
    parsed = make_url(url)
    schema, _, name = table.rpartition(".")
    naming = Postgres(host=parsed.host or "localhost", port=str(parsed.port or 5432), database=parsed.database or "",
                      schema=schema or "public", table=name)  # fmt: skip
    return kind(namespace=naming.get_namespace(), name=naming.get_name())


def parquet_schema(path: Path) -> schema_dataset.SchemaDatasetFacet:
    """Return the columns of a parquet target, as its first file's footer gives their Arrow types."""
    parts = part_files(path)
    arrow = pq.read_schema(parts[0]) if parts else []  # a folder of no part files holds no columns either
    fields = [schema_dataset.SchemaDatasetFacetFields(name=field.name, type=str(field.type)) for field in arrow]
    return schema_dataset.SchemaDatasetFacet(fields=fields)


def parquet_metrics(path: Path) -> data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet:
    """Return a parquet target's rows, bytes and files, and each flat column's nulls, from its files' footers (a column
    whose statistics lack a null count in some row group gets none)."""
    parts = part_files(path)
    rows, nulls, unknown = 0, {}, set()
    for part in parts:
        metadata = pq.read_metadata(part)
        rows += metadata.num_rows
        # The columns stored as they are (a list's elements are stored apart, under another path).
        flat = {metadata.schema.column(i).path for i in range(metadata.num_columns)} & set(
            metadata.schema.to_arrow_schema().names
        )
        for name in flat:
            nulls.setdefault(name, 0)
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                column = row_group.column(index)
                name = column.path_in_schema
                if name not in flat:
                    continue  # a part of a nested column (a list's elements)
                statistics = column.statistics
                if statistics is None or not statistics.has_null_count:
                    unknown.add(name)
                else:
                    nulls[name] = nulls.get(name, 0) + statistics.null_count
    metrics = {
        name: data_quality_metrics_input_dataset.ColumnMetrics(nullCount=count)
        for name, count in nulls.items()
        if name not in unknown
    }
    return data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
        columnMetrics=metrics, rowCount=rows, bytes=sum(part.stat().st_size for part in parts), fileCount=len(parts)
    )


def parquet_statistics(path: Path) -> output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet:
    """Return a parquet target's rows (from its footers), bytes and files."""
    parts = part_files(path)
    return output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=sum(pq.read_metadata(part).num_rows for part in parts),
        size=sum(part.stat().st_size for part in parts),
        fileCount=len(parts),
    )


def assertions(record: dict[str, Any]) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
    """Return the validity rules a run checked: one assertion per set-aside reason (no row is a success; rows replaced
    by a newer copy break no rule) and the invalid share within [rules] max_invalid_share."""
    checks = []
    for reason, count in record["set_aside"].items():
        rule = reason not in UNCOUNTED_REASONS
        checks.append(
            data_quality_assertions_dataset.Assertion(
                assertion=reason,
                success=count == 0 or not rule,
                name=reason,
                severity="warn" if rule else "info",
                expected="0" if rule else None,
                actual=str(count),
                description=f"rows set aside as {reason} (quarantined, not loaded"
                + ("" if rule else "; a newer copy replaced them, not counted as invalid")
                + ")",
            )
        )
    share = record.get("invalid_share")
    if share is not None:
        limit = config.rules().max_invalid_share
        checks.append(
            data_quality_assertions_dataset.Assertion(
                assertion="max_invalid_share",
                success=share <= limit,
                name="max_invalid_share",
                severity="error",
                expected=f"<= {limit:g}",
                actual=f"{share:g}",
                description="share of the rows that break the rules: above [rules] max_invalid_share, the run fails",
            )
        )
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=checks)


def _parquet_targets(required: Any) -> list[ParquetTarget]:
    """Return the parquet targets among the outputs of the required tasks, in their order."""
    targets = []
    for dependency in luigi.task.flatten(required):
        targets += [target for target in luigi.task.flatten(dependency.output()) if isinstance(target, ParquetTarget)]
    return targets


def _source_url(task: Any, masked: str) -> str | None:
    """Return the URL (password included) of the database the task extracted from, when it is its pipeline's source."""
    try:
        url = databases.url_of(task.pipeline.source)
    except Exception:  # no schema then: the event goes without it
        return None
    return url if safe_url(url) == masked else None


def _warehouse_url(record: dict[str, Any] | None) -> str | None:
    """Return the warehouse's URL, or None when it cannot be told (the event then names no tables)."""
    try:
        return databases.warehouse_url()
    except Exception:
        if record is not None and record.get("warehouse"):
            return record["warehouse"]  # masked: enough to name the tables
        return None


def _add_schemas(url: str | None, datasets: dict[str, Any]) -> None:
    """Give each table's dataset its schema facet, from one information_schema query (none when it fails)."""
    if url is None or "***" in url:
        return
    columns: dict[str, list[schema_dataset.SchemaDatasetFacetFields]] = {}
    try:
        with connect(url, ONE_ATTEMPT) as connection:
            rows = connection.execute(sa.text(COLUMNS_SQL), {"tables": list(datasets)}).all()
    except Exception as error:
        log.debug("lineage: no schema facets from %s: %s", safe_url(url), error)
        return
    for schema, table, column, data_type, udt_name in rows:
        columns.setdefault(f"{schema}.{table}", []).append(
            schema_dataset.SchemaDatasetFacetFields(name=column, type=_type_name(data_type, udt_name))
        )
    for table, fields in columns.items():
        datasets[table].facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)


def _type_name(data_type: str, udt_name: str) -> str:
    """Return a column's type as PostgreSQL names it: arrays as `element[]`, enums and domains by their name."""
    if data_type == "ARRAY":
        return f"{udt_name.removeprefix('_')}[]"
    return udt_name if data_type == "USER-DEFINED" else data_type
