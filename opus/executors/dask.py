"""The Dask executor: task actions run on a ``distributed`` cluster (extra ``opus[dask]``).

``DaskExecutor()`` starts a :class:`distributed.LocalCluster` on 127.0.0.1 the first time a
run needs it and reuses it for later runs of the same engine; ``DaskExecutor(address=
"host:port")`` connects to a running scheduler instead.

Sizing (URL ``dask://?processes=N``, or ``DaskExecutor(processes=N)``): the LocalCluster
has exactly ``parallelism`` slots, so ``--parallelism`` is honoured. By default that is one
worker process with ``parallelism`` threads -- right for I/O-bound actions (HTTP calls,
shell commands, cloud APIs), which wait without holding the GIL. ``processes=N`` spreads
the slots over ``N`` worker processes (``ceil(parallelism / N)`` threads each) for CPU-bound
Python actions; ``processes=0`` runs the worker threads inside the driver process (no worker
process, no pickling round trip: the lowest overhead per task, but actions share the
driver's interpreter). The private cluster runs without the worker's statistical profiler
and work stealing, which cost CPU per task and help nothing here. The driver
keeps scheduling, variables and state; only ``opus_process_task`` runs on the workers.

Submissions are sent in bursts: ``submit`` queues the task, and the first submission of a
burst schedules a flush on the client's event loop that sends everything queued by then as
one graph (``client.map``); the results of tasks that finish together are fetched with one
``gather``. Tasks and results travel as standard pickles, cloudpickle only where needed.

What a worker needs to find processors is shipped with every call as one pickled
*environment* (disabled plugin names, hand-registered plugin modules and objects,
hand-registered processors) and turned into a per-process cached
:class:`~opus.plugins.Plugins`. Processors registered by hand travel by value, so a class
defined in a script or a test module works on a worker that cannot import it.

Cancellation crosses the process boundary: ``ctx.cancelled`` reaches a worker as a fresh
object, so when the driver cancels an action (a timeout, a second Ctrl-C) the executor
sends :func:`cancel_on_worker` to every worker (``Client.run``: outside the task threads,
so a worker whose threads are all busy still gets it), which cancels that action's copy
there -- ``shell/v1`` then kills its command as it does in the driver's own threads.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import pickle
import socket
import sys
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..cancellation import Cancellation
from ..errors import ExecutorConfigError, ExecutorError, describe_error
from .base import Executor

if TYPE_CHECKING:
    from ..model import Result, Task
    from ..plugins import Plugins
    from ..processor import TaskContext

logger = logging.getLogger(__name__)

#: Hooks whose implementations matter on a worker (everything else runs on the driver).
_WORKER_HOOKS = frozenset({"opus_register_processors", "opus_process_task"})


#: Dask settings for the private LocalCluster: no sampling profiler on the workers (it wakes
#: every 10 ms), no work stealing (one worker, or slots sized to the run), quieter health
#: checks on a busy machine.
_CLUSTER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.scheduler.work-stealing": False,
    "distributed.admin.tick.limit": "5s",
}


def parse_dask_url(spec: str) -> dict[str, Any]:
    """``DaskExecutor`` arguments from ``dask``, ``dask://HOST:PORT`` or ``dask://?processes=N``."""
    from urllib.parse import parse_qsl

    rest = spec.split("://", 1)[1] if "://" in spec else ""
    address, _, query = rest.partition("?")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise ExecutorConfigError(f"invalid Dask executor URL {spec!r}: bad query string") from None
    unknown = set(options) - {"processes"}
    if unknown:
        raise ExecutorConfigError(
            f"invalid Dask executor URL {spec!r}: unknown option(s) "
            f"{', '.join(sorted(unknown))} (known: processes)"
        )
    kwargs: dict[str, Any] = {"address": address or None}
    if "processes" in options:
        if address:
            raise ExecutorConfigError(
                f"invalid Dask executor URL {spec!r}: processes=N sizes a LocalCluster; "
                "it cannot be combined with a scheduler address"
            )
        try:
            kwargs["processes"] = int(options["processes"])
            if kwargs["processes"] < 0:
                raise ValueError
        except ValueError:
            raise ExecutorConfigError(
                f"invalid Dask executor URL {spec!r}: processes must be a whole number >= 0"
            ) from None
    return kwargs


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ExecutorError(
            f"the dask executor needs dask.distributed: install opus[dask] ({exc})"
        ) from None
    return distributed


def _cloudpickle() -> Any:
    try:
        import cloudpickle
    except ImportError as exc:  # pragma: no cover - distributed depends on cloudpickle
        raise ExecutorError(
            f"the dask executor needs cloudpickle: install opus[dask] ({exc})"
        ) from None
    return cloudpickle


class DaskExecutor(Executor):
    """Runs task actions on a Dask cluster (a private ``LocalCluster`` or ``address``)."""

    name = "dask"

    def __init__(
        self,
        address: str | None = None,
        *,
        n_workers: int | None = None,
        processes: int | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        _distributed()  # fail early, with the install hint, when the extra is missing
        if address and "://" not in address:
            address = f"tcp://{address}"
        if processes is not None and processes < 0:
            raise ExecutorConfigError(f"dask: processes must be >= 0, got {processes}")
        self.address = address
        #: Worker processes of the LocalCluster (``0``: threads in this process).
        self.processes = n_workers if processes is None else processes
        self.connect_timeout = connect_timeout
        self._cluster: Any = None
        self._client: Any = None
        self._slots = 0
        self._env: tuple[str, bytes] | None = None
        #: Submissions not yet sent: ``(key, environment, payload, driver future, task name)``.
        self._pending: list[tuple[str, tuple[str, bytes], bytes, Future[Any], str]] = []
        self._pending_lock = threading.Lock()
        #: Task keys: unique per executor (a random prefix) and per call (a counter).
        self._key_prefix = uuid.uuid4().hex[:8]
        self._key_counter = itertools.count()
        #: When forced cancellations (opus is exiting) stop waiting to be delivered.
        self._force_deadline: float | None = None

    # -- cluster ----------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (``None`` before the first :meth:`start`)."""
        return self._client

    def _connect(self, max_workers: int) -> None:
        distributed = _distributed()
        if self._client is not None and (self.address or self._slots >= max_workers):
            return
        self.close()
        if self.address:
            _check_reachable(self.address, self.connect_timeout)
            try:
                self._client = distributed.Client(
                    self.address, timeout=self.connect_timeout, set_as_default=False
                )
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(
                    f"cannot connect to the Dask scheduler at {self.address} within "
                    f"{self.connect_timeout:g}s: {describe_error(exc)}"
                ) from None
            logger.info("connected to Dask scheduler %s", self.address)
            return
        in_process = self.processes == 0
        workers = max(1, min(self.processes or 1, max_workers))
        threads = max(1, math.ceil(max_workers / workers))
        logger.info(
            "starting a Dask LocalCluster: %s x %d thread(s)",
            "in this process" if in_process else f"{workers} worker process(es)",
            threads,
        )
        try:
            import dask

            with dask.config.set(_CLUSTER_CONFIG):  # read by the scheduler and the workers
                self._cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads,
                    processes=not in_process,
                    host=None if in_process else "127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            self._client = distributed.Client(self._cluster, set_as_default=False)
        except Exception as exc:
            self.close()
            raise ExecutorError(
                f"cannot start a Dask LocalCluster: {describe_error(exc)}"
            ) from None
        self._slots = workers * threads

    # -- the Executor seam ------------------------------------------------------------------
    def start(self, plugins: Plugins, max_workers: int) -> None:
        self._connect(max_workers)
        blob = worker_environment(plugins)
        self._env = (hashlib.sha256(blob).hexdigest(), blob)

    def submit(self, task: Task, ctx: TaskContext) -> Future[Result]:
        assert self._client is not None and self._env is not None, "start() first"
        try:
            payload = dumps((task, ctx))
        except Exception as exc:
            raise ExecutorError(
                f"task {task.name!r}: cannot send {ctx.action!r} to the Dask cluster: its "
                f"spec or context cannot be pickled ({describe_error(exc)})"
            ) from None
        key = f"opus-{ctx.action}-{task.name}-{self._key_prefix}-{next(self._key_counter)}"
        local: Future[Result] = Future()
        local.set_running_or_notify_cancel()
        cancellation = ctx.cancelled
        forget = cancellation.add_callback(
            lambda force: self._cancel_remote(
                _action_id(key), cancellation.reason or "cancelled", force
            )
        )
        local.add_done_callback(lambda _: forget())
        with self._pending_lock:
            first = not self._pending
            self._pending.append((key, self._env, payload, local, task.name))
        if first:  # one flush per burst: it takes every submission made until it runs
            self._client.loop.add_callback(self._flush)
        return local

    def _flush(self) -> None:
        """Send every pending submission to the scheduler as one graph (on the client's event
        loop): one ``update-graph`` message for a burst instead of one per task, and the
        driver thread does not serialise graphs."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        client = self._client
        keys, environments, payloads, locals_, names = zip(*batch, strict=True)
        try:
            if client is None:
                raise ExecutorError("the Dask executor was closed")
            remotes = client.map(
                run_on_worker,
                [digest for digest, _blob in environments],
                [blob for _digest, blob in environments],
                list(payloads),
                [_action_id(k) for k in keys],
                key=list(keys),
                pure=False,
                retries=0,
            )
        except BaseException as exc:  # noqa: BLE001 - every task of the batch fails with it
            for local, name in zip(locals_, names, strict=True):
                local.set_exception(
                    ExecutorError(f"task {name!r}: cannot submit it to Dask: {describe_error(exc)}")
                )
            return
        # Results are gathered on the event loop: distributed's add_done_callback runs
        # callbacks one by one on a single thread, where a blocking result() would fetch
        # one task's result at a time.
        items = list(zip(remotes, locals_, names, strict=True))
        client.loop.add_callback(_settle_all, client, items)

    def _cancel_remote(self, key: str, reason: str, force: bool) -> None:
        """Tell the workers that action ``key`` is cancelled (a cancellation callback: runs
        in the driver thread, so it waits for nothing -- except, with ``force``, up to two
        seconds in all for the message to be sent before opus exits)."""
        client = self._client
        if client is None:
            return
        sender = threading.Thread(
            target=_send_cancel, args=(client, key, reason, force), name="opus-dask-cancel",
            daemon=True,
        )  # fmt: skip
        sender.start()
        if force:
            if self._force_deadline is None:
                self._force_deadline = time.monotonic() + 2.0
            sender.join(max(0.0, self._force_deadline - time.monotonic()))

    def shutdown(self) -> None:
        """Keep the cluster for the engine's next run; :meth:`close` ends it."""
        self._env = None

    def close(self) -> None:
        for thing in (self._client, self._cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception as exc:  # closing is best effort
                    logger.debug("closing %r failed: %s", thing, exc)
        self._client = self._cluster = None
        self._slots = 0


def _check_reachable(address: str, timeout: float) -> None:
    """Fail at once when nothing listens at a ``tcp://`` address (Dask would retry until
    its timeout); other schemes are left to Dask."""
    scheme, _, rest = address.partition("://")
    if scheme != "tcp":
        return
    host, _, port = rest.rpartition(":")
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout).close()
    except ValueError:
        raise ExecutorConfigError(
            f"invalid Dask scheduler address {address!r}: expected dask://HOST:PORT"
        ) from None
    except OSError as exc:
        raise ExecutorError(
            f"cannot connect to the Dask scheduler at {address}: {describe_error(exc)}"
        ) from None


async def _settle_all(client: Any, items: list[tuple[Any, Future[Any], str]]) -> None:
    """Settle the driver futures of one submitted batch: the remote futures that finished
    together are fetched with one ``gather`` (one request for many results, not one per
    task). Should that ever go wrong (it waits on ``Future._state``, a private part of
    distributed), each task left is settled on its own, so no driver future is left hanging.
    """
    left = {remote.key: (remote, local, name) for remote, local, name in items}
    items.clear()  # delivered results are dropped (and released on the workers) at once
    try:
        await _settle_batches(client, left)
    finally:
        for remote, local, name in list(left.values()):
            if not local.done():
                await _settle(client, remote, local, name)


async def _settle_batches(client: Any, left: dict[str, tuple[Any, Future[Any], str]]) -> None:
    import asyncio

    waiting = {
        asyncio.ensure_future(remote._state.wait()): key for key, (remote, *_) in left.items()
    }
    fetching: set[asyncio.Future[None]] = set()
    while waiting:
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        ready = [left[waiting.pop(waiter)] for waiter in done]
        # Fetched concurrently with the next ones finishing: a group never waits for another.
        fetching.add(asyncio.ensure_future(_fetch(client, ready, left)))
    if fetching:
        await asyncio.gather(*fetching)


async def _fetch(
    client: Any,
    ready: list[tuple[Any, Future[Any], str]],
    left: dict[str, tuple[Any, Future[Any], str]],
) -> None:
    """Settle tasks that finished together: the successful ones with one ``gather``."""
    finished = [item for item in ready if item[0].status == "finished"]
    for remote, local, name in ready:
        if remote.status != "finished":  # the worker died, the task was cancelled, ...
            await _settle(client, remote, local, name)
            left.pop(remote.key, None)
    if not finished:
        return
    try:
        values = await client.gather([r for r, _l, _n in finished], asynchronous=True)
    except BaseException:  # noqa: BLE001 - one by one, so each task gets its own error
        values = None
    for index, (remote, local, name) in enumerate(finished):
        if values is None:
            await _settle(client, remote, local, name)
        else:
            _deliver(local, name, values[index])
        left.pop(remote.key, None)


def _deliver(local: Future[Any], name: str, value: tuple[bool, bytes]) -> None:
    try:
        ok, blob = value
        result = pickle.loads(blob)
    except BaseException as exc:  # noqa: BLE001 - e.g. a class the driver cannot import
        local.set_exception(
            ExecutorError(f"task {name!r}: cannot read its result: {describe_error(exc)}")
        )
        return
    if ok:
        local.set_result(result)
    else:
        local.set_exception(result)


async def _settle(client: Any, remote: Any, local: Future[Any], name: str) -> None:
    """Turn a finished distributed future into the driver's ``concurrent`` future.

    Runs on the client's event loop; ``gather(asynchronous=True)`` awaits the task and
    fetches its result without blocking the loop.
    """
    try:
        value = await client.gather(remote, asynchronous=True)
    except BaseException as exc:  # the worker died, the task was cancelled, ...
        local.set_exception(
            ExecutorError(
                f"task {name!r}: the Dask cluster failed to run it: {describe_error(exc)}"
            )
        )
        return
    _deliver(local, name, value)


# -- what travels to the workers -------------------------------------------------------------
def worker_environment(plugins: Plugins) -> bytes:
    """Pickle what a worker needs to rebuild ``plugins``' processors and task wrappers."""
    cloudpickle = _cloudpickle()
    objects: list[object] = []
    for plugin in plugins.registered_plugins():
        hooks = {c.name for c in plugins.pm.get_hookcallers(plugin) or []}
        if hooks & _WORKER_HOOKS:
            objects.append(plugin)
    processors = plugins.registered_processors()
    by_value = _modules_to_ship(processors)
    for module in by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        shippable = []
        for obj in objects:
            try:
                cloudpickle.dumps(obj)
                shippable.append(obj)
            except Exception as exc:
                logger.warning(
                    "plugin %r cannot be sent to Dask workers (%s); it will not run there",
                    obj,
                    describe_error(exc),
                )
        try:
            payload: bytes = cloudpickle.dumps(
                (sorted(plugins.disabled), shippable, processors, plugins.plugin_config)
            )
            return payload
        except Exception as exc:
            names = ", ".join(repr(p) for p in processors)
            raise ExecutorError(
                f"cannot send the processors registered by hand ({names}) to the Dask "
                f"workers: {describe_error(exc)}"
            ) from None
    finally:
        for module in by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _modules_to_ship(processors: list[Any]) -> list[ModuleType]:
    """Modules of hand-registered processors, pickled by value (workers may not import them)."""
    modules = []
    for processor in processors:
        cls = processor if isinstance(processor, type) else type(processor)
        module = sys.modules.get(cls.__module__)
        if (
            module is None
            or module.__name__ == "__main__"
            or module.__name__.split(".")[0] == "opus"
        ):
            continue
        if module not in modules:
            modules.append(module)
    return modules


_cache_lock = threading.Lock()
_worker_plugins: dict[str, Plugins] = {}


def plugins_for(key: str, blob: bytes) -> Plugins:
    """This process' :class:`Plugins` for a shipped environment, built on first use."""
    plugins = _worker_plugins.get(key)
    if plugins is not None:
        return plugins
    with _cache_lock:
        plugins = _worker_plugins.get(key)
        if plugins is None:
            from ..plugins import Plugins

            disabled, objects, processors, config = _cloudpickle().loads(blob)
            plugins = Plugins(disabled=disabled, plugins=objects, plugin_config=config)
            registry = plugins.processors()
            for processor in processors:
                if processor.api_version not in registry:  # missing here: use the shipped one
                    plugins.register_processor(processor)
            _worker_plugins[key] = plugins
    return plugins


def _action_id(key: str) -> str:
    """What finds a running action on its worker: its task key, made into a string that is
    not a key itself (an argument equal to a key in the graph could be read as a reference)."""
    return f"cancel:{key}"


def _send_cancel(client: Any, key: str, reason: str, force: bool) -> None:
    try:
        client.run(cancel_on_worker, key, reason, force, on_error="ignore")
    except Exception as exc:  # a closed client, a gone cluster: nothing left to stop
        logger.debug("could not send the cancellation of %s to the workers: %s", key, exc)


#: The cancellations of the actions running in this (worker) process, by task key.
_running: dict[str, Cancellation] = {}
#: Keys cancelled before their action started here (each worker hears of every
#: cancellation, so most never start here: only the newest are kept).
_cancelled_early: OrderedDict[str, tuple[str, bool]] = OrderedDict()
_EARLY_KEPT = 1024
_running_lock = threading.Lock()


def cancel_on_worker(key: str, reason: str, force: bool) -> bool:
    """Cancel action ``key`` (an :func:`_action_id`) if it runs in this process (``True``),
    or as it starts here; what the driver sends every worker with ``Client.run``."""
    with _running_lock:
        cancellation = _running.get(key)
        if cancellation is None:
            _cancelled_early[key] = (reason, force)
            while len(_cancelled_early) > _EARLY_KEPT:
                _cancelled_early.popitem(last=False)
            return False
    cancellation.cancel(reason, force=force)
    return True


def run_on_worker(
    key: str, env: bytes, payload: bytes, action_key: str | None = None
) -> tuple[bool, bytes]:
    """Run one task action on a worker; returns ``(ok, pickled Result or exception)``.

    Errors travel as values so the driver sees the processor's own exception (not a Dask
    wrapper), and so an unpicklable result or exception becomes a clear message.
    ``action_key`` (:func:`_action_id` of the Dask task key) is how :func:`cancel_on_worker`
    finds the action.
    """
    name, action = "?", "?"
    try:
        task, ctx = pickle.loads(payload)
        name, action = task.name, ctx.action
        if action_key is None:
            result = plugins_for(key, env).process_task(task, ctx)
        else:
            result = _cancellable(
                action_key, ctx, lambda: plugins_for(key, env).process_task(task, ctx)
            )
    except BaseException as exc:  # noqa: BLE001 - sent back as the task's error
        try:
            return False, dumps(exc)
        except Exception:
            return False, dumps(ExecutorError(describe_error(exc)))
    try:
        return True, dumps(result)
    except Exception as exc:
        error = ExecutorError(
            f"task {name!r}: the result of {action!r} cannot be pickled to send it back from "
            f"the Dask worker ({describe_error(exc)})"
        )
        return False, dumps(error)


def _cancellable(action_key: str, ctx: TaskContext, act: Any) -> Any:
    """``act()`` with ``ctx.cancelled`` findable by :func:`cancel_on_worker` meanwhile."""
    cancellation = ctx.cancelled
    with _running_lock:
        early = _cancelled_early.pop(action_key, None)
        _running[action_key] = cancellation
    try:
        if early is not None:
            cancellation.cancel(early[0], force=early[1])
        return act()
    finally:
        with _running_lock:
            _running.pop(action_key, None)


def dumps(value: object) -> bytes:
    """``value`` pickled: by the standard pickler (fast: classes by reference), or by
    cloudpickle when that fails or would refer to ``__main__`` (a lambda, a class defined
    in a function or a script, ...).

    Either way ``pickle.loads`` reads it back (cloudpickle writes standard pickles)."""
    try:
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        if b"__main__" not in blob:  # __main__ differs between driver and worker
            return blob
    except Exception:  # noqa: BLE001 - cloudpickle tries harder (or names the problem)
        pass
    by_value: bytes = _cloudpickle().dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return by_value
