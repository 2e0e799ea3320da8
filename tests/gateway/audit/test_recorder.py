"""The audit recorder's waits end: shutdown returns while the writer is stuck on a database lock, and a
``record`` that cannot queue fails instead of hanging its request (both databases)."""

from __future__ import annotations

import logging
import time

import pytest
from support.audit import token_entry
from support.db_locks import hold_write_lock

from gateway.audit.recorder import AuditBackloggedError, AuditRecorder
from gateway.core.config import Settings
from gateway.db.engine import make_engine


def test_close_returns_while_the_writer_waits_on_a_lock(settings: Settings, caplog) -> None:
    patient = settings.model_copy(update={"db_lock_timeout_seconds": 60})  # the writer waits a long time
    holder, writer = make_engine(patient), make_engine(patient)
    recorder = AuditRecorder(writer, interval_seconds=0.01, close_timeout_seconds=0.5)
    try:
        with holder.connect() as held:
            hold_write_lock(held, "audit_event")
            recorder.record(token_entry(settings, event_id="ev-1"))
            deadline = time.monotonic() + 30
            while len(recorder._queue):  # the writer took the event and is now waiting on the lock
                assert time.monotonic() < deadline, "the audit writer never took the event"
                time.sleep(0.01)
            with caplog.at_level(logging.ERROR, logger="gateway.audit.recorder"):
                recorder.close()
            assert "did not stop" in caplog.text and "1 queued events are not written" in caplog.text
            assert recorder.written == 0
            held.rollback()  # the writer gets the lock and finishes (it is a daemon thread, gone at exit)
        thread = recorder._thread
        assert thread is not None
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert recorder.written == 1
    finally:
        holder.dispose()
        writer.dispose()


def test_record_fails_when_the_queue_stays_full(engine, settings: Settings) -> None:
    recorder = AuditRecorder(engine, max_queued=1, put_timeout_seconds=0.1)
    recorder.close()  # no writer runs any more
    recorder.record(token_entry(settings, event_id="ev-1"))
    with pytest.raises(AuditBackloggedError, match="stayed full"):
        recorder.record(token_entry(settings, event_id="ev-2"))
