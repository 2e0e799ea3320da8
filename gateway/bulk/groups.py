"""Groups for ``Group/{id}/$export``: each clinic's own Group (id = the clinic slug: all its patients) and
ad-hoc groups an operator creates (``kap-gateway groups create``) from the clinic's patient ids.

Groups are not stored resources: ``read_group`` and ``search_groups`` build the FHIR Group (type person,
actual, members by reference) from the clinic's patients or the group's member rows, for the clinics the
token may see (Bulk Data: a server with Group export SHOULD support Group read and search by identifier).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.auth import known_clinics
from gateway.core.config import Settings
from gateway.core.errors import ConflictError, GatewayError, NotFoundError, bad_request, not_found
from gateway.core.ids import identifier_system, resource_id
from gateway.db.engine import Session
from gateway.db.repositories import bulk as repo
from gateway.db.repositories import clinics as clinic_repo
from gateway.db.tables import BulkGroupRow, utcnow
from gateway.fhir_api.access import FhirAccess

NAME_MAX = 200


class GroupMembersError(GatewayError):
    status_code = 422


@dataclass(frozen=True)
class GroupSummary:
    group_id: str
    clinic: str
    name: str
    members: int
    kind: str  # clinic | ad-hoc

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.group_id,
            "clinic": self.clinic,
            "name": self.name,
            "members": self.members,
            "kind": self.kind,
        }


def create_group(
    session: Session, *, clinic_slug: str, name: str, patients: Sequence[str], group_id: str | None = None
) -> GroupSummary:
    """An ad-hoc group of the clinic's patients, named by the clinic's own patient ids (external ids) or
    by their FHIR ids; every one must be a current Patient of the clinic."""
    clinic_pk = known_clinics.clinic_pk(session, clinic_slug)
    if not name.strip() or len(name) > NAME_MAX:
        raise GroupMembersError(f"group name: 1 to {NAME_MAX} characters")
    if not patients:
        raise GroupMembersError("a group needs at least one patient")
    group_id = group_id or str(uuid.uuid4())
    if repo.get_group(session, group_id=group_id) or clinic_repo.get_clinic(session, slug=group_id):
        raise ConflictError(f"group {group_id} exists")
    wanted = {p: resource_id(clinic_slug, "patients", p) for p in patients}
    candidates = [*wanted.values(), *patients]
    found = repo.existing_patient_ids(session, clinic_pk=clinic_pk, patient_ids=candidates)
    members: list[str] = []
    unknown: list[str] = []
    for given, mapped in wanted.items():
        if mapped in found:
            members.append(mapped)
        elif given in found:
            members.append(given)
        else:
            unknown.append(given)
    if unknown:
        raise GroupMembersError(f"not patients of clinic {clinic_slug}: {', '.join(unknown[:10])}")
    row = repo.add_group(
        session,
        group=BulkGroupRow(group_id=group_id, clinic_pk=clinic_pk, name=name, created_at=utcnow()),
        patient_ids=members,
    )
    session.commit()
    return GroupSummary(row.group_id, clinic_slug, name, len(set(members)), "ad-hoc")


def list_groups(session: Session) -> list[GroupSummary]:
    out: list[GroupSummary] = []
    clinics = {c.id: c for c in clinic_repo.list_clinics(session)}
    for clinic in clinics.values():
        assert clinic.id is not None
        count = repo.count_patients(session, clinic_pks=[clinic.id])
        out.append(GroupSummary(clinic.slug, clinic.slug, clinic.name, count, "clinic"))
    for group in repo.list_groups(session):
        assert group.id is not None
        out.append(
            GroupSummary(
                group.group_id,
                clinics[group.clinic_pk].slug,
                group.name,
                repo.count_members(session, group_pk=group.id),
                "ad-hoc",
            )
        )
    return out


def delete_group(session: Session, *, group_id: str) -> None:
    group = repo.get_group(session, group_id=group_id)
    if group is None or group.id is None:
        raise NotFoundError(f"group {group_id} is not known (a clinic's own group cannot be deleted)")
    repo.delete_group(session, group_pk=group.id)
    session.commit()


# --- Group as a FHIR resource (read and search on /fhir/Group, for Bulk Data clients) ---


def _group_ref(clinic_slug: str, group_id: str, name: str, kind: str, group_pk: int | None) -> dict[str, Any]:
    return {"clinic": clinic_slug, "id": group_id, "name": name, "kind": kind, "group_pk": group_pk}


def visible_groups(session: Session, access: FhirAccess) -> list[dict[str, Any]]:
    """The groups of the clinics the token may see: each clinic's own, then the ad-hoc ones."""
    access.require("Group", "r")
    out: list[dict[str, Any]] = []
    clinics = {c.id: c for c in clinic_repo.list_clinics(session) if c.id in access.clinic_pks}
    for clinic in clinics.values():
        out.append(_group_ref(clinic.slug, clinic.slug, clinic.name, "clinic", None))
    for group in repo.list_groups(session):
        if group.clinic_pk in clinics:
            out.append(
                _group_ref(clinics[group.clinic_pk].slug, group.group_id, group.name, "ad-hoc", group.id)
            )
    return out


def group_resource(session: Session, settings: Settings, ref: dict[str, Any]) -> bytes:
    """The Group (type person, actual) with its members, as FHIR JSON."""
    clinic = clinic_repo.get_clinic(session, slug=ref["clinic"])
    assert clinic is not None and clinic.id is not None
    members: list[str] = []
    after = ""
    while True:
        page = repo.patient_ids_page(
            session, clinic_pk=clinic.id, group_pk=ref["group_pk"], after=after, limit=5000
        )
        members += page
        if len(page) < 5000:
            break
        after = page[-1]
    group = {
        "resourceType": "Group",
        "id": ref["id"],
        "identifier": [
            {
                "system": identifier_system(settings.identifier_base, ref["clinic"], "groups"),
                "value": ref["id"],
            }
        ],
        "active": True,
        "type": "person",
        "actual": True,
        "name": ref["name"],
        "quantity": len(members),
        "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in members],
    }
    if not members:
        del group["member"]
    return orjson.dumps(group)


def read_group(session: Session, settings: Settings, *, access: FhirAccess, group_id: str) -> bytes:
    for ref in visible_groups(session, access):
        if ref["id"] == group_id:
            return group_resource(session, settings, ref)
    raise not_found("Group", group_id)


GROUP_SEARCH_PARAMS = ("_id", "identifier", "name")


def search_groups(
    session: Session, settings: Settings, *, access: FhirAccess, params: Sequence[tuple[str, str]]
) -> list[tuple[str, bytes]]:
    """Group search by ``_id``, ``identifier`` (``[system|]value``) and ``name`` (starts with, any case);
    (id, resource) pairs in id order."""
    refs = visible_groups(session, access)
    for name, value in params:
        if name in ("_count", "_format"):
            continue
        if name not in GROUP_SEARCH_PARAMS:
            raise bad_request(
                f"Group search supports {', '.join(GROUP_SEARCH_PARAMS)}, not {name!r}", expression=[name]
            )
        values = value.split(",")
        if name == "_id":
            refs = [r for r in refs if r["id"] in values]
        elif name == "identifier":
            refs = [r for r in refs if any(_identifier_matches(settings, r, v) for v in values)]
        else:
            refs = [r for r in refs if any(r["name"].lower().startswith(v.lower()) for v in values)]
    return [(r["id"], group_resource(session, settings, r)) for r in sorted(refs, key=lambda r: r["id"])]


def _identifier_matches(settings: Settings, ref: dict[str, Any], value: str) -> bool:
    system, bar, code = value.rpartition("|")
    if not bar:
        return code == ref["id"]
    return code == ref["id"] and system in (
        "",
        identifier_system(settings.identifier_base, ref["clinic"], "groups"),
    )
