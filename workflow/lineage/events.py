"""A task run's OpenLineage run events (spec 2-0-2), built with the client's spec classes (event_v2, facet_v2).

Each task run is a run of the job `<pipeline>.<Task>`, whose parent is the run of its pipeline for the date: a
UUID derived from the namespace, pipeline, date and partial flag, as Airflow's OpenLineage provider derives a DAG
run's from the DAG and its logical date, so every task of the date names the same parent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from openlineage.client.event_v2 import Job, Run, RunEvent, RunState, set_producer
from openlineage.client.facet_v2 import error_message_run, job_type_job, nominal_time_run, parent_run
from openlineage.client.uuid import generate_static_uuid

from workflow.lineage import Settings, datasets

# Who wrote the events and their facets (the spec asks for a URI): this project's name.
PRODUCER = "urn:course-recommendations:workflow"
set_producer(PRODUCER)  # the facets' _producer (the client's own URL otherwise)


def job_name(task: Any) -> str:
    """Return the task's job name: its pipeline's name and its class (`courses.ValidRatings`)."""
    return f"{task.pipeline.name}.{type(task).__name__}"


def day_start(date: dt.date) -> dt.datetime:
    """Return the first instant of the date's day, in UTC."""
    return dt.datetime.combine(date, dt.time(), dt.timezone.utc)


def pipeline_run_id(namespace: str, pipeline: str, date: dt.date, partial_day: bool = False) -> str:
    """Return the run id of a pipeline's run for a date: the same for every task of it, in every process."""
    data = f"{namespace}.{pipeline}.{date:%Y-%m-%d}{'.partial' if partial_day else ''}".encode()
    return str(generate_static_uuid(instant=day_start(date), data=data))


def run_event(task: Any, record: dict[str, Any] | None, settings: Settings) -> RunEvent:
    """Return the task run's START event (no record yet) or its COMPLETE or FAIL event (from its run record)."""
    namespace, pipeline = settings.namespace, task.pipeline.name
    if record is None:
        state, time, run_id = RunState.START, task.started_at.isoformat(timespec="milliseconds"), task.run_id
    else:
        state = RunState.COMPLETE if record["status"] == "done" else RunState.FAIL
        time, run_id = record["finished_at"], record["run_id"]
    parent_id = pipeline_run_id(namespace, pipeline, task.date, task.partial_day)
    start = day_start(task.date)
    facets: dict[str, Any] = {
        "parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent_id),
            job=parent_run.Job(namespace=namespace, name=pipeline),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=parent_id), job=parent_run.RootJob(namespace=namespace, name=pipeline)
            ),
        ),
        "nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=start.isoformat(), nominalEndTime=(start + dt.timedelta(days=1)).isoformat()
        ),
    }
    if state is RunState.FAIL and record.get("error"):
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=record["error"], programmingLanguage="python"
        )
    job_type = job_type_job.JobTypeJobFacet(processingType="BATCH", integration="LUIGI", jobType="TASK")
    return RunEvent(
        eventType=state,
        eventTime=time,
        run=Run(runId=run_id, facets=facets),
        job=Job(namespace=namespace, name=job_name(task), facets={"jobType": job_type}),
        producer=PRODUCER,
        inputs=datasets.inputs(task, record),
        outputs=datasets.outputs(task, record),
    )
