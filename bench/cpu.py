"""CPU time of processes, read from /proc (Linux), for CPU time per request.

A process's CPU time is utime + stime: fields 14 and 15 of /proc/<pid>/stat, in clock ticks
(os.sysconf("SC_CLK_TCK"), usually 100 a second). Threads are included; children that have
exited are not (cutime, cstime: never wanted here).
"""

from __future__ import annotations

import os
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/<pid>/stat (the command name, field 2, may hold spaces and
    parentheses: everything up to its last ')' is skipped). None if the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process so far, in seconds; None if it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # fields[0] is field 3 (state): field 14 (utime) is fields[11], field 15 (stime) fields[12].
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def _pids() -> list[int]:
    return [int(entry.name) for entry in os.scandir(PROC) if entry.name.isdigit()]


def children(parent: int) -> list[int]:
    """The live processes whose parent is ``parent`` (a gunicorn master's workers)."""
    found = []
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is not None and int(fields[1]) == parent:  # field 4: ppid
            found.append(pid)
    return found


def with_command_line(*words: str) -> list[int]:
    """The live processes whose command line holds every one of ``words`` (as written by the
    process: a PostgreSQL backend shows "postgres: <cluster>: <user> <database> <client> ...")."""
    found = []
    for pid in _pids():
        try:
            line = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        if all(word in line for word in words):
            found.append(pid)
    return found


def snapshot(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each of ``pids`` still alive."""
    taken = {}
    for pid in pids:
        seconds = cpu_seconds(pid)
        if seconds is not None:
            taken[pid] = seconds
    return taken


def spent(before: dict[int, float], after: dict[int, float]) -> tuple[float, int]:
    """CPU seconds spent between two snapshots, and how many processes of ``before`` were gone
    by ``after`` (their time since ``before`` is lost: the figure can only be too low). A
    process new in ``after`` counts from zero."""
    seconds = sum(value - before.get(pid, 0.0) for pid, value in after.items())
    return seconds, len(before.keys() - after.keys())
