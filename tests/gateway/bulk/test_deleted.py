"""The manifest's ``deleted`` files (Bulk Data 2.0 export.md, "Response - Complete Status"): with ``_since``,
the resources deleted since then that the export would have sent, one transaction Bundle with a DELETE
entry per line; never in ``output``; nothing the client's token, filters or compartment exclude."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from sqlalchemy.engine import Engine

from gateway.db.engine import session_scope
from gateway.db.repositories import resources as resource_repo
from gateway.store import versions

from .conftest import drain, store_rows
from .test_export import in_compartment
from .test_post_kickoff import parameters


def delete(engine: Engine, resource_type: str, resource_id: str) -> None:
    """A store deletion (a version of its own; the resource leaves the search index)."""
    with session_scope(engine) as session:
        row = resource_repo.get_current(session, resource_type=resource_type, resource_id=resource_id)
        assert row is not None and not row.deleted
        versions.delete_resource(session, row=row, now=datetime.now(UTC))
        session.commit()


def deleted_urls(result) -> list[str]:
    urls = []
    for bundle in result.deleted():
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        assert bundle["meta"]["lastUpdated"].endswith("Z")
        for entry in bundle["entry"]:
            assert entry["request"]["method"] == "DELETE"
            urls.append(entry["request"]["url"])
    return urls


def observations(engine: Engine, clinic: str = "demo") -> dict[str, dict]:
    return {rid: orjson.loads(c) for (_, rid), c in store_rows(engine, clinic, ("Observation",)).items()}


def is_vital(observation: dict) -> bool:
    return "vital-signs" in {c["code"] for cat in observation.get("category", []) for c in cat["coding"]}


def test_deleted_since_lists_exactly_the_deletions_and_output_never_has_them(
    demo, token, export, engine
) -> None:
    first = export("$export", token)
    assert "deleted" not in first.manifest  # no _since: nothing to say
    since = first.manifest["transactionTime"]
    gone = sorted(observations(engine))[:2]
    patient = sorted(rid for t, rid in store_rows(engine, "demo", ("Patient",)))[0]
    for rid in gone:
        delete(engine, "Observation", rid)
    delete(engine, "Patient", patient)
    other = sorted(observations(engine, "other"))[0]
    delete(engine, "Observation", other)  # another clinic's deletion never shows

    later = export("$export", token, {"_since": since})
    expected = {f"Observation/{rid}" for rid in gone} | {f"Patient/{patient}"}
    assert sorted(deleted_urls(later)) == sorted(expected)
    assert [item["type"] for item in later.manifest["deleted"]] == ["Bundle"]
    assert later.manifest["deleted"][0]["count"] == len(expected)
    assert not {f"{t}/{rid}" for t, rid in later.ids()} & expected

    # deletions before _since are not listed again
    again = export("$export", token, {"_since": later.manifest["transactionTime"]})
    assert again.manifest["deleted"] == []


def test_deleted_keeps_to_the_types_filters_and_scopes(demo, token, make_token, export, engine) -> None:
    since = export("$export", token, {"_type": "Patient"}).manifest["transactionTime"]
    stored = observations(engine)
    vital = sorted(rid for rid, o in stored.items() if is_vital(o))[0]
    plain = sorted(rid for rid, o in stored.items() if not is_vital(o))[0]
    delete(engine, "Observation", vital)
    delete(engine, "Observation", plain)

    assert deleted_urls(export("$export", token, {"_since": since, "_type": "Patient"})) == []
    filtered = export("$export", token, {"_since": since, "_typeFilter": "Observation?category=vital-signs"})
    assert deleted_urls(filtered) == [f"Observation/{vital}"]
    scoped = make_token("system/Patient.read system/Observation.rs?category=vital-signs")
    assert deleted_urls(export("$export", scoped, {"_since": since})) == [f"Observation/{vital}"]
    assert sorted(deleted_urls(export("$export", token, {"_since": since}))) == sorted(
        [f"Observation/{vital}", f"Observation/{plain}"]
    )


def test_deleted_keeps_to_the_patient_compartments(demo, token, make_token, export, engine) -> None:
    since = export("$export", token, {"_type": "Patient"}).manifest["transactionTime"]
    stored = store_rows(engine, "demo")
    first, second = sorted(rid for t, rid in stored if t == "Patient")[:2]
    mine = sorted(k for k, c in stored.items() if k[0] == "Observation" and in_compartment(k[0], c, {first}))[
        0
    ]
    theirs = sorted(
        k for k, c in stored.items() if k[0] == "Observation" and in_compartment(k[0], c, {second})
    )[0]
    delete(engine, *mine)
    delete(engine, *theirs)
    wanted = {f"{mine[0]}/{mine[1]}"}

    own = make_token("patient/*.read", patient=first)
    assert set(deleted_urls(export("Patient/$export", own, {"_since": since}))) == wanted
    body = parameters(("_since", since), ("patient", f"Patient/{first}"))
    assert set(deleted_urls(export("Patient/$export", token, parameters=body))) == wanted
    everyone = export("Group/demo/$export", token, {"_since": since})
    assert set(deleted_urls(everyone)) == wanted | {f"{theirs[0]}/{theirs[1]}"}


def test_a_resumed_job_lists_each_deletion_once(demo, token, client, engine, settings) -> None:
    from gateway.bulk.runner import run_export_turn

    from .conftest import ASYNC, auth, local

    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    gone = sorted(observations(engine))[:5]
    for rid in gone:
        delete(engine, "Observation", rid)
    small = settings.model_copy(update={"export_file_max_resources": 2, "export_batch_size": 2})
    kicked = client.get(
        "/fhir/$export", params={"_since": since, "_type": "Observation"}, headers=auth(token, **ASYNC)
    )
    assert kicked.status_code == 202, kicked.text
    # a worker that stops after every file (as if it died), then one that finishes
    for _ in range(3):
        run_export_turn(engine, small, owner="dying-worker", max_files=1)
    drain(engine, small, owner="dying-worker")
    manifest = client.get(local(kicked.headers["Content-Location"]), headers=auth(token)).json()
    listed = []
    for item in manifest["deleted"]:
        lines = client.get(local(item["url"]), headers=auth(token)).content.splitlines()
        listed += [orjson.loads(line)["entry"][0]["request"]["url"] for line in lines]
    assert sorted(listed) == sorted(f"Observation/{rid}" for rid in gone)
    assert len(manifest["deleted"]) >= 3  # two per file
