"""A change subscriber for tests of ``gateway.store.changes``: it records what it is told (``("changed",
type, id)``, ``("everything",)``, ``("enable",)``, ``("disable",)``) and, given ``forward``, passes every
call on (to wrap the read cache a running app's ``ChangeListener`` tells). ``wait_for`` polls with a
deadline, never forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Event = tuple[str, ...]


class RecordingSubscriber:
    def __init__(self, forward: Any = None) -> None:
        self.forward = forward
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def _tell(self, event: Event, call: Callable[[Any], None]) -> None:
        if self.forward is not None:
            call(self.forward)
        with self._lock:
            self._events.append(event)

    def changed(self, resource_type: str, resource_id: str) -> None:
        self._tell(("changed", resource_type, resource_id), lambda f: f.changed(resource_type, resource_id))

    def changed_everything(self) -> None:
        self._tell(("everything",), lambda f: f.changed_everything())

    def enable(self) -> None:
        self._tell(("enable",), lambda f: f.enable())

    def disable(self) -> None:
        self._tell(("disable",), lambda f: f.disable())

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float = 5.0) -> list[Event]:
        """The events once ``predicate(events)`` holds; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events
            if predicate(events):
                return events
            assert time.monotonic() < deadline, f"not told within {timeout} s; told so far: {events}"
            time.sleep(0.02)


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """``condition()`` once it is truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.02)
