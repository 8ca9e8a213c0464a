"""A worker's share of the open connections (api/balance.py), on tables in this process: when it closes
one, how many, and that workers that are gone do not count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tierserve.api import balance
from tierserve.api.balance import ConnectionTable, WorkerShare


def gone_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def share_of(table: ConnectionTable, counts: dict[int, int]) -> WorkerShare:
    """This process's share of `table` after the workers `counts` (pid: open connections) joined it;
    this process is one of them (its pid's count)."""
    mine = table.join()
    assert mine is not None
    values = table._table.get_obj()
    slot = 0
    for pid, count in counts.items():
        if pid == os.getpid():
            values[2 * mine.slot + 1] = count
            continue
        while slot == mine.slot:
            slot += 1
        values[2 * slot], values[2 * slot + 1] = pid, count
        slot += 1
    return mine


def test_a_worker_over_its_share_marks_only_the_connections_above_it() -> None:
    other = os.getppid()  # alive
    share = share_of(ConnectionTable(4), {os.getpid(): 7, other: 1})  # share: ceil(8 / 2) = 4
    assert [share.should_close() for _ in range(5)] == [True, True, True, False, False]
    share.closed(marked=True)  # one marked connection ends: 6 open, 2 of them still marked
    assert not share.should_close()


def test_a_worker_at_or_under_its_share_or_with_one_connection_keeps_them() -> None:
    other = os.getppid()
    assert not share_of(ConnectionTable(4), {os.getpid(): 4, other: 4}).should_close()
    assert not share_of(ConnectionTable(4), {os.getpid(): 3, other: 5}).should_close()
    assert not share_of(ConnectionTable(4), {os.getpid(): 1, other: 0}).should_close()
    share = share_of(ConnectionTable(4), {os.getpid(): 4, other: 4})
    share.table.get_obj()[6:8] = [0, -5]  # a free slot keeps no connections, whatever its count says
    assert not share.should_close()


def test_workers_that_are_gone_do_not_count() -> None:
    """A worker stopped or killed without freeing its slot: its connections and itself leave the share,
    so the live workers can meet it (else 8 connections on 2 live workers of 3 counted would close
    connections forever: share ceil(8 / 3) = 3)."""
    other = os.getppid()
    assert not share_of(ConnectionTable(4), {os.getpid(): 4, other: 4, gone_pid(): 0}).should_close()
    assert not share_of(ConnectionTable(4), {os.getpid(): 4, other: 4, gone_pid(): 6}).should_close()
    share = share_of(ConnectionTable(4), {os.getpid(): 5, other: 3, gone_pid(): 0})
    assert share.should_close()  # 5 > ceil(8 / 2)


def test_joining_frees_the_slots_of_workers_that_are_gone() -> None:
    table = ConnectionTable(3)
    values = table._table.get_obj()
    values[0:6] = [gone_pid(), 5, os.getppid(), 2, gone_pid(), 7]
    mine = table.join()
    assert mine is not None and mine.slot == 0
    assert list(values) == [os.getpid(), 0, os.getppid(), 2, 0, 0]
    mine.leave()
    assert list(values) == [0, 0, os.getppid(), 2, 0, 0]


def test_no_free_slot_means_no_share() -> None:
    table = ConnectionTable(1)
    table._table.get_obj()[0:2] = [os.getppid(), 1]
    assert table.join() is None


def test_cores_are_spare_while_the_workers_hold_fewer_connections_than_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lone reads decode in parallel (`TileReader`'s `spare_cores`) only while the open connections of
    the live workers are fewer than the CPU cores; a free slot's count does not count."""
    assert balance.open_connections() is None and balance.spare_cores(4)  # no table: a single process
    share = share_of(ConnectionTable(4), {os.getpid(): 2, os.getppid(): 1})
    monkeypatch.setattr(balance, "current", share)
    assert balance.open_connections() == 3 and balance.spare_cores(4)
    share.opened()
    assert balance.open_connections() == 4 and not balance.spare_cores(4)
    share.table.get_obj()[6:8] = [0, 9]  # a free slot, whatever count it was left with
    assert balance.open_connections() == 4
