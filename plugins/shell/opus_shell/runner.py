"""Running one command in its own process group, with a timeout that leaves no orphans."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opus.cancellation import Cancellation

logger = logging.getLogger(__name__)

#: How long to wait for the pipes to close after the process group was killed.
_DRAIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class Completed:
    """How a command ended; ``exit_code`` is negative when a signal killed it."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    duration_s: float = 0.0
    cancelled: bool = False


#: How often a running command checks whether its task was cancelled, in seconds.
POLL = 0.1


def run(
    command: str,
    *,
    shell: str,
    env: Mapping[str, str],
    cwd: str | None = None,
    timeout: float | None = None,
    kill_grace: float = 2.0,
    cancel: Cancellation | None = None,
) -> Completed:
    """Run ``command`` with ``shell -c`` in a new session; kill the whole group on timeout
    or when ``cancel`` is set.

    On timeout or cancellation the group gets SIGTERM, then SIGKILL if anything in it is
    still alive after ``kill_grace`` seconds (at once when opus is exiting); the result has
    ``timed_out=True`` or ``cancelled=True``.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        [shell, "-c", command],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    remove: Callable[[], None] = lambda: None  # noqa: E731
    if cancel is not None:

        def stop(force: bool) -> None:  # from the driver: signal now, the loop escalates
            _signal_group(proc.pid, signal.SIGKILL if force else signal.SIGTERM)

        remove = cancel.add_callback(stop)
    deadline = started + timeout if timeout is not None else None
    timed_out = cancelled = False
    try:
        while True:
            wait = POLL if cancel is not None else None
            if deadline is not None:
                left = max(0.0, deadline - time.monotonic())
                wait = left if wait is None else min(wait, left)
            try:
                out, err = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                cancelled = cancel is not None and cancel.is_set()
                timed_out = deadline is not None and time.monotonic() >= deadline
                if not (cancelled or timed_out):
                    continue
            why = "its task was cancelled" if cancelled else f"it timed out after {timeout}s"
            logger.warning("command stopped: %s; killing process group %d", why, proc.pid)
            kill_group(proc.pid, kill_grace)
            try:
                out, err = proc.communicate(timeout=_DRAIN_TIMEOUT)
            except subprocess.TimeoutExpired:  # a process that left the group holds the pipes
                proc.kill()
                out, err = b"", b""
            break
    except BaseException:  # KeyboardInterrupt and friends: do not leave the group running
        kill_group(proc.pid, 0)
        proc.wait()
        raise
    finally:
        remove()
    cancelled = cancelled or (cancel is not None and cancel.is_set())
    return Completed(
        command=command,
        exit_code=proc.returncode,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
        timed_out=timed_out and not cancelled,
        duration_s=time.monotonic() - started,
        cancelled=cancelled,
    )


def kill_group(pgid: int, grace: float) -> None:
    """SIGTERM every process in group ``pgid``, then SIGKILL what survives ``grace`` seconds."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member changed user; nothing we can do
        logger.warning("not allowed to signal process group %d", pgid)
        return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still running (zombies do not count)."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry / "stat")
        if fields and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _stat_fields(path: Path) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name: state, ppid, pgrp, ..."""
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()
