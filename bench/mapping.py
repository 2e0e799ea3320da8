"""Mapping benchmark: clinic records mapped to FHIR and validated, per second on one core.

Runs the demo clinic (default 100 patients) through the same steps the write path takes and times each
step separately: parse (clinic record validation), map+validate (``to_fhir_*`` building fhir.resources
models, which validates them), serialize (the resources' JSON as the store keeps it; fhir.resources' own serializer is timed for comparison), and the independent JSON-schema check
that the tests add (not on the write path). Prints a table and writes bench/results/mapping.json.

    python bench/mapping.py [--patients 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fixtures.demo import generate_clinic  # noqa: E402
from gateway.core.ids import resource_id  # noqa: E402
from mappings.context import MappingContext  # noqa: E402
from mappings.fhir import resource_json  # noqa: E402
from mappings.outbound import map_record, related_keys  # noqa: E402
from mappings.records import RECORD_KINDS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=100)
    args = parser.parse_args()
    entries = generate_clinic(patients=args.patients, seed=0).entries

    started = time.perf_counter()
    parsed = [
        (kind, external_id, RECORD_KINDS[kind].model_validate(record))
        for kind, external_id, record in entries
    ]
    parse_s = time.perf_counter() - started
    by_key = {(kind, external_id): model for kind, external_id, model in parsed}

    recorded = datetime(2026, 11, 26, tzinfo=UTC)
    ids = partial(resource_id, "bench")
    started = time.perf_counter()
    mapped = []
    for kind, external_id, model in parsed:
        related = {key: by_key[key] for key in related_keys(kind, model)}
        ctx = MappingContext(
            clinic_slug="bench",
            clinic_name="Bench",
            identifier_base="https://bench.test/id",
            resource_id=ids,
            recorded=recorded,
            related=related,
        )
        mapped.extend(map_record(kind, external_id, model, ctx))
    map_s = time.perf_counter() - started

    started = time.perf_counter()
    serialized = [resource_json(resource) for resource in mapped]
    serialize_s = time.perf_counter() - started

    started = time.perf_counter()
    for resource in mapped[:5000]:
        json.loads(resource.model_dump_json())
    fhir_resources_serialize_per_s = min(5000, len(mapped)) / (time.perf_counter() - started)

    schema_s = None
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from support.fhir_validator import json_schema_errors, validator_available

        if validator_available(need_node=False):
            json_schema_errors(serialized[0])  # compile outside the timing
            started = time.perf_counter()
            errors = sum(len(json_schema_errors(r)) for r in serialized)
            schema_s = time.perf_counter() - started
            assert errors == 0, f"{errors} schema errors"
    except ImportError:
        pass

    records, resources = len(parsed), len(mapped)
    total = parse_s + map_s + serialize_s
    result = {
        "patients": args.patients,
        "records": records,
        "resources": resources,
        "resources_by_type": dict(Counter(r.get_resource_type() for r in mapped)),
        "records_per_s_per_core": round(records / total, 1),
        "fhir_resources_serializer_per_s": round(fhir_resources_serialize_per_s, 1),
        "resources_per_s_per_core": round(resources / (map_s + serialize_s), 1),
        "seconds": {
            "parse": round(parse_s, 3),
            "map_and_validate": round(map_s, 3),
            "serialize": round(serialize_s, 3),
            "json_schema_check": schema_s and round(schema_s, 3),
        },
        "share": {
            "parse": round(parse_s / total, 3),
            "map_and_validate": round(map_s / total, 3),
            "serialize": round(serialize_s / total, 3),
        },
    }
    print(f"{records} records -> {resources} resources ({args.patients} patients), one core")
    print(f"  parse records      {parse_s:7.2f} s  {records / parse_s:9.0f} records/s")
    print(f"  map + validate     {map_s:7.2f} s  {resources / map_s:9.0f} resources/s")
    print(
        f"  serialize          {serialize_s:7.2f} s  {resources / serialize_s:9.0f} resources/s "
        f"(kept JSON; fhir.resources' serializer: {fhir_resources_serialize_per_s:.0f}/s)"
    )
    if schema_s:
        print(f"  JSON schema check  {schema_s:7.2f} s  {resources / schema_s:9.0f} resources/s (tests only)")
    print(
        f"  end to end         {total:7.2f} s  {records / total:9.0f} records/s, "
        f"{resources / (map_s + serialize_s):.0f} resources/s"
    )
    out = ROOT / "bench" / "results" / "mapping.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count()}, **result}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
