"""``StateBackendContract``: the behaviour every state backend promises.

Subclass it in a test module (class name starting with ``Test``) and provide a
``make_backend`` fixture: a callable whose every call returns a new client of one store,
empty at the start of the test (for an in-process store such as ``memory://``, the same
object each time); the contract closes nothing, so close the clients in the fixture. Set
``durable = True`` and provide a ``backend_url`` fixture (the store's URL) to also run the
checks with real child processes, which open the store with
``opus.Plugins().state_backend(url)`` — so the backend's plugin must be installed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from ..errors import LockError
from ..model import HistoryEntry, LockInfo, RunRecord, TaskState
from ..state.base import StateBackend

#: ``make_backend``: makes clients of one store.
Factory = Callable[[], StateBackend]

HOST = socket.gethostname()

SPEC = {
    "image": "nginx:1.25",
    "replicas": 3,
    "ratio": 0.25,
    "enabled": True,
    "disabled": False,
    "nothing": None,
    "ports": [80, 443],
    "nested": {"list": [{"a": 1}, [], {}], "big": 2**53 + 1, "neg": -7},
    "unicode": "héllo ✓ 日本",
    "empty": "",
}


def state(name: str = "web", context: str = "dev", **kw: Any) -> TaskState:
    """A task record with every field set (``kw`` overrides)."""
    values: dict[str, Any] = {
        "api_version": "hello-world/v1",
        "kind": "Hello",
        "applied_spec": SPEC,
        "spec_checksum": "c" * 64,
        "outputs": {"url": "http://x", "ids": [1, 2], "meta": {"ok": True}},
        "resource_checksum": "r1",
        "status": "done",
        "created_at": 1700000000.125,
        "updated_at": 1700000001.5,
        "run_id": "run-1",
        "error": None,
        "dependencies": ("db", "net"),
    }
    values.update(kw)
    return TaskState(context=context, name=name, **values)


def entry(
    run_id: str, name: str = "web", context: str = "dev", at: float = 1.0, **kw: Any
) -> HistoryEntry:
    """A history entry of ``run_id`` for task ``name``."""
    return HistoryEntry(
        run_id=run_id, context=context, name=name, action="create", status="done", at=at, **kw
    )


def run(run_id: str, context: str = "dev", started_at: float = 1.0) -> RunRecord:
    """A run record."""
    return RunRecord(
        run_id=run_id,
        context=context,
        command="apply",
        action="apply",
        started_at=started_at,
        pid=123,
        host="h",
        user="me",
    )


def lock(run_id: str, context: str = "dev", pid: int | None = None, host: str = HOST) -> LockInfo:
    """A lock held by ``run_id`` (this process unless ``pid`` is given)."""
    return LockInfo(
        context=context,
        run_id=run_id,
        pid=os.getpid() if pid is None else pid,
        host=host,
        since=1700000000.0,
    )


class Child:
    """A Python child process running ``code``; talks line by line on stdin/stdout."""

    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid

    def readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            assert self.proc.stderr is not None
            raise AssertionError(f"child exited {self.proc.returncode}: {self.proc.stderr.read()}")
        return line.strip()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no cleanup of any kind
        self.proc.wait(10)

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        """Wait for the child to exit: its exit code, stdout and stderr."""
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


def child_processes() -> Iterator[Callable[..., Child]]:
    """Body of a ``children`` fixture: yields ``start(code, *args) -> Child``; children still
    running at teardown are killed and their pipes closed."""
    started: list[Child] = []

    def start(code: str, *args: str) -> Child:
        child = Child(code, *args)
        started.append(child)
        return child

    yield start
    for child in started:
        if child.proc.poll() is None:
            child.kill()
        for stream in (child.proc.stdin, child.proc.stdout, child.proc.stderr):
            if stream is not None:
                stream.close()


#: How a child process opens the store: through the plugins, as opus itself does.
_OPEN = """
    import sys
    from opus import Plugins
    backend = Plugins().state_backend(sys.argv[1])
"""

CHILD_SAVER = (
    _OPEN
    + """
    import time
    from opus.model import TaskState, HistoryEntry
    for i in range(10_000):
        backend.save(TaskState("dev", f"t{i}", outputs={"i": i}),
                     HistoryEntry("r1", "dev", f"t{i}", "create", "done", time.time()))
        print(i, flush=True)
"""
)

CHILD_LOCKER = (
    _OPEN
    + """
    import os, socket, time
    from opus.model import LockInfo, TaskState
    me = LockInfo("dev", "child-run", os.getpid(), socket.gethostname(), time.time())
    backend.acquire_lock(me)
    print("locked", flush=True)
    for line in sys.stdin:
        try:
            backend.save(TaskState("dev", line.strip()))
            print("saved", flush=True)
        except Exception as exc:
            print(type(exc).__name__, exc, flush=True)
"""
)

CHILD_READER = (
    _OPEN
    + """
    seen = 0
    print("ready", flush=True)
    while seen < 201:
        now = len(backend.list_records("dev"))
        assert now >= seen, (now, seen)
        seen = now
    print("saw", seen, flush=True)
"""
)


class StateBackendContract:
    """Base class of a state backend's tests (see the module docstring)."""

    #: Run the cross-process checks (needs a ``backend_url`` fixture).
    durable: ClassVar[bool] = False

    @pytest.fixture
    def make_backend(self) -> Factory:
        """Provided by the subclass: makes clients of one empty store."""
        raise NotImplementedError("a StateBackendContract subclass must provide make_backend")

    @pytest.fixture
    def backend(self, make_backend: Factory) -> StateBackend:
        """One client of the store."""
        return make_backend()

    @pytest.fixture
    def children(self) -> Iterator[Callable[..., Child]]:
        """Start :class:`Child` processes; any still running at teardown are killed."""
        yield from child_processes()

    @pytest.fixture
    def dead_pid(self) -> int:
        """The pid of a process that has just exited."""
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        return proc.pid

    @pytest.fixture
    def durable_url(self, request: pytest.FixtureRequest) -> str:
        """The store's URL, for the checks with child processes (durable backends only)."""
        if not self.durable:
            pytest.skip("not a durable backend: no checks across processes")
        url: str = request.getfixturevalue("backend_url")
        return url

    # -- task records

    def test_save_get_round_trip_keeps_every_field_and_json_type(
        self, make_backend: Factory
    ) -> None:
        backend = make_backend()
        saved = state(error="boom: ✗")
        backend.save(saved)
        got = backend.get("dev", "web")
        assert got == saved
        assert got is not None and got.applied_spec == SPEC
        assert (
            isinstance(got.applied_spec["ratio"], float)
            and got.applied_spec["nested"]["big"] == 2**53 + 1
        )
        assert make_backend().get("dev", "web") == saved  # a second client sees it

    def test_get_missing_and_other_context(self, make_backend: Factory) -> None:
        backend = make_backend()
        backend.save(state())
        assert backend.get("dev", "nope") is None
        assert backend.get("prod", "web") is None

    def test_save_replaces_the_record(self, make_backend: Factory) -> None:
        backend = make_backend()
        backend.save(state(outputs={"v": 1}))
        backend.save(state(outputs={"v": 2}, applied_spec=None, status="failed", error="e"))
        got = backend.get("dev", "web")
        assert got is not None
        assert (got.outputs, got.applied_spec, got.status, got.error) == (
            {"v": 2},
            None,
            "failed",
            "e",
        )
        assert [s.name for s in backend.list_records("dev")] == ["web"]

    def test_list_is_sorted_by_name_and_contexts_are_those_with_records(
        self, make_backend: Factory
    ) -> None:
        backend = make_backend()
        for name in ("b", "c", "a"):
            backend.save(state(name))
        backend.save(state("z", context="prod"))
        backend.save(state("gone", context="test"))
        backend.remove("test", "gone")
        assert [s.name for s in backend.list_records("dev")] == ["a", "b", "c"]
        assert [s.name for s in backend.list_records("prod")] == ["z"]
        assert backend.list_records("none") == []
        assert backend.contexts() == ["dev", "prod"]

    def test_remove_deletes_and_records_history(self, make_backend: Factory) -> None:
        backend = make_backend()
        backend.save(state(), entry("r1", at=1.0))
        assert backend.remove("dev", "web", entry("r2", at=2.0, spec_checksum=None))
        assert backend.get("dev", "web") is None
        assert not backend.remove("dev", "web")
        assert [h.run_id for h in backend.history("dev", "web")] == ["r2", "r1"]

    def test_history_is_newest_first_limited_and_per_task(self, make_backend: Factory) -> None:
        backend = make_backend()
        for i in range(7):
            backend.save(state(), entry(f"r{i}", at=float(i), duration_s=0.5, error=f"e{i}"))
        backend.save(state("other"), entry("rx", "other"))
        backend.save(state(context="prod"), entry("ry", context="prod"))
        backend.save(state())  # no entry: no history
        history = backend.history("dev", "web")
        assert [h.run_id for h in history] == [f"r{i}" for i in range(6, -1, -1)]
        assert history[0] == entry("r6", at=6.0, duration_s=0.5, error="e6")
        assert [h.run_id for h in backend.history("dev", "web", limit=3)] == ["r6", "r5", "r4"]
        assert backend.history("dev", "web", limit=0) == []
        assert [h.run_id for h in backend.history("prod", "web")] == ["ry"]
        assert backend.history("dev", "missing") == []

    # -- runs

    def test_runs_start_finish_list_and_get(self, make_backend: Factory) -> None:
        backend = make_backend()
        backend.start_run(run("aaa111", started_at=1.0))
        backend.start_run(run("aab222", started_at=2.0))
        backend.start_run(run("bbb333", context="prod", started_at=3.0))
        backend.finish_run("aaa111", "ok", 5.5, {"done": 2, "failed": 0})
        first = backend.get_run("aaa111")
        assert first is not None
        assert (first.status, first.finished_at, dict(first.summary)) == (
            "ok",
            5.5,
            {"done": 2, "failed": 0},
        )
        assert (first.pid, first.host, first.user, first.command) == (123, "h", "me", "apply")
        running = backend.get_run("aab222")
        assert running == run("aab222", started_at=2.0)
        assert [r.run_id for r in backend.list_runs()] == ["bbb333", "aab222", "aaa111"]
        assert [r.run_id for r in backend.list_runs("dev")] == ["aab222", "aaa111"]
        assert [r.run_id for r in backend.list_runs(limit=1)] == ["bbb333"]
        assert backend.list_runs("none") == []

    def test_get_run_by_unique_prefix(self, make_backend: Factory) -> None:
        backend = make_backend()
        backend.start_run(run("aaa111"))
        backend.start_run(run("aab222"))
        assert backend.get_run("aaa").run_id == "aaa111"  # type: ignore[union-attr]
        assert backend.get_run("aab2").run_id == "aab222"  # type: ignore[union-attr]
        assert backend.get_run("aa") is None  # ambiguous
        assert backend.get_run("zzz") is None
        assert backend.get_run("aaa1111") is None  # longer than the id

    def test_run_entries_in_order(self, make_backend: Factory) -> None:
        backend = make_backend()
        backend.start_run(run("r1"))
        backend.save(state("b"), entry("r1", "b", at=1.0))
        backend.save(state("a"), entry("r1", "a", at=2.0))
        backend.save(state("a"), entry("r2", "a", at=3.0))
        backend.remove("dev", "b", entry("r1", "b", at=4.0))
        assert [(h.name, h.at) for h in backend.run_entries("r1")] == [
            ("b", 1.0),
            ("a", 2.0),
            ("b", 4.0),
        ]
        assert backend.run_entries("nope") == []

    def test_prune_keeps_newest_runs_per_context_and_all_records(
        self, make_backend: Factory
    ) -> None:
        backend = make_backend()
        for i in range(5):
            backend.start_run(run(f"dev{i}", started_at=float(i)))
            backend.save(state(f"t{i}"), entry(f"dev{i}", f"t{i}", at=float(i)))
        for i in range(2):
            backend.start_run(run(f"prod{i}", context="prod", started_at=float(10 + i)))
            backend.save(state("p", context="prod"), entry(f"prod{i}", "p", "prod"))
        assert backend.prune(keep_runs=2) == 3
        assert [r.run_id for r in backend.list_runs("dev")] == ["dev4", "dev3"]
        assert [r.run_id for r in backend.list_runs("prod")] == ["prod1", "prod0"]
        assert backend.run_entries("dev0") == [] and backend.get_run("dev0") is None
        assert [h.run_id for h in backend.history("dev", "t4")] == ["dev4"]
        assert backend.history("dev", "t1") == []
        assert len(backend.list_records("dev")) == 5  # records are never pruned
        assert backend.prune(keep_runs=2) == 0
        assert backend.prune(keep_runs=0) == 4
        assert backend.list_runs() == []

    def test_prune_keeps_a_run_that_holds_its_lock(self, make_backend: Factory) -> None:
        backend = make_backend()
        backend.start_run(run("old", started_at=1.0))
        backend.start_run(run("live", started_at=2.0))
        assert backend.try_lock(lock("live")) is None
        assert backend.prune(keep_runs=0) == 1  # the run going on is kept
        assert [r.run_id for r in backend.list_runs("dev")] == ["live"]
        backend.unlock("dev")
        assert backend.prune(keep_runs=0) == 1
        assert backend.list_runs() == []

    def test_run_reports_are_kept_replaced_and_pruned(self, make_backend: Factory) -> None:
        backend, reader = make_backend(), make_backend()
        if type(backend).save_run_report is StateBackend.save_run_report:
            pytest.skip("this backend does not keep run reports (optional)")
        assert backend.run_report("r1") is None
        backend.start_run(run("r1", started_at=1.0))
        report = {
            "version": 1,
            "dependencies": {"web": ["db"], "db": []},
            "tasks": {
                "db": {"status": "done", "started_at": 1.5, "error": None},
                "web": {"status": "failed", "error": "<script>héllo</script>"},
            },
        }
        backend.save_run_report("r1", report)
        assert reader.run_report("r1") == report
        backend.save_run_report("r1", {**report, "version": 2})
        assert reader.run_report("r1") == {**report, "version": 2}
        backend.start_run(run("r2", started_at=2.0))
        backend.save_run_report("r2", report)
        assert backend.prune(keep_runs=1) == 1
        assert reader.run_report("r1") is None and reader.run_report("r2") == report

    def test_run_report_given_as_text_reads_back_as_its_document(
        self, make_backend: Factory
    ) -> None:
        backend, reader = make_backend(), make_backend()
        if type(backend).save_run_report is StateBackend.save_run_report:
            pytest.skip("this backend does not keep run reports (optional)")
        backend.start_run(run("r1", started_at=1.0))
        report = {
            "version": 1,
            "tasks": {"db": {"status": "done", "started_at": 1.5}, "web": {"status": "not_run"}},
        }
        backend.save_run_report_text("r1", json.dumps(report))
        assert reader.run_report("r1") == report
        backend.save_run_report_text("r1", json.dumps({**report, "version": 2}))
        assert reader.run_report("r1") == {**report, "version": 2}

    # -- locks

    def test_lock_acquire_refuse_and_release(self, make_backend: Factory) -> None:
        holder, other = make_backend(), make_backend()
        assert holder.get_lock("dev") is None
        assert holder.try_lock(lock("r1")) is None
        assert holder.try_lock(lock("r1")) is None  # the same run may take it again
        refused = other.try_lock(lock("r2"))
        assert refused is not None and (refused.run_id, refused.host) == ("r1", HOST)
        assert other.get_lock("dev") == lock("r1")
        assert other.try_lock(lock("r2", context="prod")) is None  # locks are per context
        assert not other.unlock("dev", "r2")  # not the holder
        assert holder.get_lock("dev") == lock("r1")
        assert holder.unlock("dev", "r1")
        assert not holder.unlock("dev", "r1")
        assert other.get_lock("dev") is None
        assert other.try_lock(lock("r2")) is None
        assert holder.get_lock("dev") == lock("r2")

    def test_acquire_lock_error_names_the_holder(self, make_backend: Factory) -> None:
        holder, other = make_backend(), make_backend()
        holder.acquire_lock(lock("r1"))
        started = time.monotonic()
        with pytest.raises(LockError, match=r"locked by run r1 \(pid \d+, host .+\) since 2023-"):
            other.acquire_lock(lock("r2"), timeout=0.3)
        assert time.monotonic() - started >= 0.3

    def test_acquire_lock_waits_for_release(self, make_backend: Factory) -> None:
        holder, other = make_backend(), make_backend()
        holder.acquire_lock(lock("r1"))
        releaser = threading.Timer(0.3, holder.unlock, args=("dev", "r1"))
        releaser.start()
        other.acquire_lock(lock("r2"), timeout=10)
        releaser.join()
        assert other.get_lock("dev") == lock("r2")

    def test_force_unlock(self, make_backend: Factory) -> None:
        holder, other = make_backend(), make_backend()
        holder.acquire_lock(lock("r1"))
        assert other.unlock("dev")  # whoever holds it
        assert other.get_lock("dev") is None
        other.acquire_lock(lock("r2"))
        assert other.get_lock("dev") == lock("r2")

    def test_lock_of_a_dead_process_on_this_host_is_taken_over(
        self, make_backend: Factory, dead_pid: int, caplog: pytest.LogCaptureFixture
    ) -> None:
        holder, other = make_backend(), make_backend()
        assert holder.try_lock(lock("ghost", pid=dead_pid)) is None
        other.acquire_lock(lock("r2"))
        assert other.get_lock("dev") == lock("r2")
        assert "no longer exists" in caplog.text

    def test_lock_of_a_process_on_another_host_is_not_taken_over(
        self, make_backend: Factory, dead_pid: int
    ) -> None:
        holder, other = make_backend(), make_backend()
        holder.try_lock(lock("far", pid=dead_pid, host="another-host.example"))
        with pytest.raises(LockError, match="locked by run far"):
            other.acquire_lock(lock("r2"))

    # -- concurrency

    def test_reads_from_other_threads_while_writing(self, make_backend: Factory) -> None:
        backend = make_backend()
        errors: list[BaseException] = []
        done = threading.Event()

        def read() -> None:
            try:
                seen = 0
                while not done.is_set():
                    now = len(backend.list_records("dev"))
                    assert now >= seen
                    seen = now
                    backend.history("dev", "t0")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        readers = [threading.Thread(target=read) for _ in range(3)]
        for t in readers:
            t.start()
        for i in range(100):
            backend.save(state(f"t{i}"), entry("r1", f"t{i}"))
        done.set()
        for t in readers:
            t.join()
        assert errors == []
        assert len(backend.list_records("dev")) == 100

    # -- durable backends: real processes

    def test_nothing_committed_is_lost_when_the_writer_is_killed(
        self, durable_url: str, make_backend: Factory, children: Callable[..., Child]
    ) -> None:
        child = children(CHILD_SAVER, durable_url)
        last = -1
        while last < 25:
            last = int(child.readline())
        child.kill()  # SIGKILL right after a save returned (perhaps in the middle of the next)
        assert child.proc.stdout is not None
        printed = [int(line) for line in child.proc.stdout.read().split()]  # said after `last`
        last = max([last, *printed])
        backend = make_backend()
        names = {s.name for s in backend.list_records("dev")}
        assert {f"t{i}" for i in range(last + 1)} <= names  # every save that returned is there
        assert len(names) <= last + 2  # plus at most the one in flight
        for s in backend.list_records("dev"):  # no half-written record: each has its history
            assert s.outputs == {"i": int(s.name[1:])}
            assert [h.name for h in backend.history("dev", s.name)] == [s.name]

    def test_lock_is_refused_across_processes_and_freed_when_the_holder_dies(
        self, durable_url: str, make_backend: Factory, children: Callable[..., Child]
    ) -> None:
        child = children(CHILD_LOCKER, durable_url)
        assert child.readline() == "locked"
        backend = make_backend()
        with pytest.raises(LockError, match=rf"locked by run child-run \(pid {child.pid}, host "):
            backend.acquire_lock(lock("parent"))
        child.kill()
        backend.acquire_lock(lock("parent"), timeout=5)
        assert backend.get_lock("dev") == lock("parent")

    def test_force_unlock_of_a_live_holder_in_another_process(
        self, durable_url: str, make_backend: Factory, children: Callable[..., Child]
    ) -> None:
        child = children(CHILD_LOCKER, durable_url)
        assert child.readline() == "locked"
        child.send("before")
        assert child.readline() == "saved"
        backend = make_backend()
        assert backend.unlock("dev")
        backend.acquire_lock(lock("parent"))
        child.send("after")
        reply = child.readline()
        # Either the old holder notices before writing again (PostgreSQL ends its session),
        # or the lock is advisory and a forced unlock only clears the record (SQLite).
        if reply.startswith("LockError"):
            assert "lost the lock of context 'dev'" in reply
            assert backend.get("dev", "after") is None
        else:
            assert reply == "saved"
        assert backend.get_lock("dev") == lock("parent")

    def test_reader_in_another_process_while_writing(
        self, durable_url: str, make_backend: Factory, children: Callable[..., Child]
    ) -> None:
        backend = make_backend()
        backend.save(state("seed"))
        reader = children(CHILD_READER, durable_url)
        assert reader.readline() == "ready"
        for i in range(200):
            backend.save(state(f"t{i}"), entry("r1", f"t{i}"))
        assert reader.readline() == "saw 201"
