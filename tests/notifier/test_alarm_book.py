"""The alarm book keeps the open alarms and a bounded few cleared ones: memory does not grow with history."""

from datetime import UTC, datetime

import pytest

from vigil.domain.alarms import AlarmKind
from vigil.domain.errors import NotFound
from vigil.domain.faults import FaultId, Severity
from vigil.notifier.alarms import AlarmBook

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def raise_one(book: AlarmBook, n: int) -> str:
    change = book.raise_alarm(
        cause=f"fault-{n}",
        kind=AlarmKind.HOST_DOWN,
        project=None,
        resource_type="host",
        resource_id=f"compute-{n}",
        severity=Severity.CRITICAL,
        fault=FaultId(f"fault-{n}"),
        reason="down",
        now=NOW,
    )
    return change.alarm.id


def test_cleared_alarms_leave_memory_but_the_last_few() -> None:
    book = AlarmBook(recent=2)
    ids = [raise_one(book, n) for n in range(5)]
    for ident in ids[:4]:
        book.clear(book.get(ident), NOW)
    assert len(book) == 1
    assert [a.id for a in book.open()] == [ids[4]]
    assert book.get(ids[3]).id == ids[3]  # cleared a moment ago: still here
    with pytest.raises(NotFound):
        book.get(ids[0])  # older: the store has it
    assert book.of_fault("fault-1") == []
    assert book.active(AlarmKind.HOST_DOWN, "compute-4") is not None


def test_the_same_cause_raises_the_same_alarm_id() -> None:
    assert raise_one(AlarmBook(), 7) == raise_one(AlarmBook(), 7)
    assert raise_one(AlarmBook(), 7) != raise_one(AlarmBook(), 8)


def test_details_update_an_alarm_only_when_they_change_it() -> None:
    book = AlarmBook()
    alarm = book.get(raise_one(book, 1))

    first = book.update(alarm, NOW, details={"fence": "requested"})
    again = book.update(alarm, NOW, details={"fence": "requested"})
    second = book.update(alarm, NOW, details={"fence": "confirmed", "recovery": "evacuating"})

    assert first is not None
    assert again is None, "nothing changed: no notification"
    assert second is not None
    assert alarm.version == 3
    assert alarm.details == {"fence": "confirmed", "recovery": "evacuating"}
