"""Background work that runs beside the API: the sync outbox, Bulk Data export jobs, periodic clean-ups.

One place decides where it runs: ``kap-gateway worker`` runs the loop standalone (as many processes as
you like), and ``kap-gateway serve`` runs one loop in-process (``KAPGW_IN_PROCESS_WORKER``, on by default).
Each task claims its own work with leases in the database, so any number of loops may run at once.

A task is ``(engine, settings) -> bool``: it does one unit of work (or a bounded batch) and says whether
it found any. The loop calls every task in turn and sleeps ``KAPGW_WORKER_POLL_SECONDS`` only when none
found work, so a busy queue drains at full speed and an idle one costs a few queries per poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.core.config import Settings
from gateway.db.engine import Engine

log = logging.getLogger(__name__)

Task = Callable[[Engine, Settings], bool]


@dataclass(frozen=True)
class NamedTask:
    name: str
    run: Task


#: filled by the packages that have background work (see ``register``), in import order
TASKS: list[NamedTask] = []


def register(name: str) -> Callable[[Task], Task]:
    """Decorator: ``@register("sync.deliver")`` adds the function to every worker loop."""

    def add(task: Task) -> Task:
        if all(existing.name != name for existing in TASKS):
            TASKS.append(NamedTask(name, task))
        return task

    return add


def load_tasks() -> list[NamedTask]:
    """Imports the modules that register tasks (kept here so the worker and ``serve`` load the same set)."""
    for module in BACKGROUND_MODULES:
        __import__(module)
    return list(TASKS)


#: modules whose import registers background tasks; each package adds its own line
BACKGROUND_MODULES: list[str] = [
    "gateway.sync.outbox",
    "gateway.bulk.runner",
    "gateway.auth.maintenance",
    "gateway.audit.retention",
]


@dataclass
class WorkerLoop:
    engine: Engine
    settings: Settings
    tasks: list[NamedTask] = field(default_factory=load_tasks)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run_once(self) -> bool:
        """Every task once; True when any of them found work."""
        found = False
        for task in self.tasks:
            if self.stopping.is_set():
                break
            try:
                found = task.run(self.engine, self.settings) or found
            except Exception:  # one failing task must not stop the others; it is retried next poll
                log.exception("background task failed", extra={"task": task.name})
        return found

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            if not self.run_once():
                self.stopping.wait(self.settings.worker_poll_seconds)

    def stop(self) -> None:
        self.stopping.set()


def start_in_thread(loop: WorkerLoop) -> threading.Thread:
    thread = threading.Thread(target=loop.run_forever, name="kapgw-worker", daemon=True)
    thread.start()
    return thread
