"""Deterministic identities (DESIGN §5): re-mapping a record always yields the same FHIR id."""

from __future__ import annotations

import os
import random
import uuid

#: namespace of all gateway resource ids (uuid5 of a fixed URL, never change it)
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://kap-gateway.org/fhir/ids")


def resource_id(clinic_slug: str, kind: str, external_id: str, part: str = "") -> str:
    """uuid5 of clinic, record kind, external id and (for records that map to several resources) a part."""
    name = f"{clinic_slug}/{kind}/{external_id}" + (f"#{part}" if part else "")
    return str(uuid.uuid5(ID_NAMESPACE, name))


def identifier_system(identifier_base: str, clinic_slug: str, kind: str) -> str:
    return f"{identifier_base.rstrip('/')}/{clinic_slug}/{kind}"


#: the process's generator of event ids: seeded from os.urandom, seeded again in a forked child
_event_ids = random.Random()
os.register_at_fork(after_in_child=_event_ids.seed)


def event_uuid() -> uuid.UUID:
    """A random (version 4) UUID for request and AuditEvent ids, made without a system call.

    ``uuid.uuid4()`` reads ``os.urandom``, which releases the GIL; on a request path with busy threads
    beside it (the audit writer, the worker pool) re-taking the GIL can wait up to the interpreter's switch
    interval (5 ms), and did: two such ids were a quarter of a cached read's time. These ids must be
    unique, not secret (122 random bits from a generator seeded from os.urandom); tokens, secrets and
    ``jti`` values keep using ``secrets``/``uuid4``.
    """
    return uuid.UUID(int=_event_ids.getrandbits(128), version=4)


def new_request_id() -> str:
    return event_uuid().hex
