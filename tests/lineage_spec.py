"""OpenLineage's specification, kept offline under tests/openlineage/: events and facets validated against it."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SPEC = Path(__file__).resolve().parent / "openlineage"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


@cache
def spec_registry() -> Registry:
    """Return the spec's schemas (the event's and every facet's kept here) by their $id, for the validators' $refs."""
    schemas = [json.loads(path.read_text()) for path in [SPEC / "OpenLineage.json", *(SPEC / "facets").glob("*.json")]]
    return Registry().with_resources((schema["$id"], Resource.from_contents(schema)) for schema in schemas)


def facets_of(event: dict) -> list[dict]:
    """Return every facet of an event: its run's, its job's and its datasets'."""
    found = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        for kind in ("facets", "inputFacets", "outputFacets"):
            found += dataset.get(kind, {}).values()
    return found


def errors(event: dict) -> list[str]:
    """Return how an event breaks the spec's run event schema (2-0-2) or its facets' own schemas (a facet whose schema
    is not kept here raises referencing's Unresolvable: it cannot be checked offline)."""
    if event.get("schemaURL") != RUN_EVENT:
        return [f"schemaURL {event.get('schemaURL')!r} is not {RUN_EVENT}"]
    found = []
    for document in [event, *facets_of(event)]:
        url = document["schemaURL" if document is event else "_schemaURL"]
        validator = Draft202012Validator({"$ref": url}, registry=spec_registry())
        found += [f"{url} {error.json_path}: {error.message}" for error in validator.iter_errors(document)]
    return found


def validate(event: dict) -> None:
    """Check an event against the spec's version it names, and each of its facets against the facet's own schema."""
    assert not errors(event), errors(event)
