"""Throughput of the two validation layers on simple synthetic Observations.

Run: .venv/bin/python tests/support/fhir_validator_bench.py [count]
"""

from __future__ import annotations

import sys
import time
from typing import Any

from fhir_validator import (
    R4_CORE,
    ProfileValidator,
    _schema_validator,
    errors_only,
    json_schema_errors,
    schema_backends,
)


def observations(count: int) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Observation",
            "id": f"hr-{i}",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/synthetic-{i % 50}"},
            "effectiveDateTime": "2024-03-01T10:15:00Z",
            "valueQuantity": {
                "value": 60 + i % 40,
                "unit": "beats/minute",
                "system": "http://unitsofmeasure.org",
                "code": "/min",
            },
        }
        for i in range(count)
    ]


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f} resources/s  ({seconds:.2f} s)"


def main(count: int) -> None:
    resources = observations(count)
    for backend in schema_backends():
        start = time.perf_counter()
        _schema_validator("Observation", backend)
        compiled = time.perf_counter() - start
        start = time.perf_counter()
        bad = sum(bool(json_schema_errors(r, backend=backend)) for r in resources)
        print(
            f"json_schema_errors [{backend:13}] {rate(count, time.perf_counter() - start)}"
            f"  compile {compiled:.2f} s, {bad} invalid"
        )

    start = time.perf_counter()
    with ProfileValidator() as validator:
        print(f"node validator start-up            {time.perf_counter() - start:.2f} s")
        for label, profiles in [
            ("base R4 only", []),
            ("+ heartrate + vitalsigns", [R4_CORE + "heartrate", R4_CORE + "vitalsigns"]),
        ]:
            start = time.perf_counter()
            results = validator.validate([(r, profiles) for r in resources])
            elapsed = time.perf_counter() - start
            bad = sum(bool(errors_only(issues)) for issues in results)
            print(f"ProfileValidator {label:18} {rate(count, elapsed)}  {bad} invalid")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000)
