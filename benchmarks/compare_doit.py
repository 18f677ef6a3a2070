"""opus against doit, side by side in one run: whole CLI processes with durable state.

    python benchmarks/compare_doit.py [--tasks 10000 100] [--repeat 3] [--parallelism 10]
                                      [--no-startup] [--tools opus doit] [--before DIR]

Needs ``pip install -r benchmarks/requirements.txt`` (doit 0.37; a benchmark dependency only).

The workload is a binary tree of no-op tasks where task ``i`` uses an output of its parent
``(i - 1) // 2``:

* opus: YAML manifests (1,000 documents a file), ``${VAR:parent:v}`` in each spec, a no-op
  processor loaded with ``-p``, SQLite state (``sqlite:///.../state.db``), ``opus apply``.
* doit: a ``dodo.py`` yielding the same tree, each task a Python action returning ``{"v": 1}``,
  ``getargs`` reading the parent's ``v``, ``config_changed`` over the same spec for the
  up-to-date check, doit's default (dbm) dependency file, serial execution (doit's fastest
  setting for no-op actions).

Each repetition starts from empty state (and, for opus, an empty manifest parse cache): the
*first* run does every task, the *second* run
(nothing changed) does none. Figures are medians of ``--repeat`` repetitions; the ratio is
opus / doit (below 1 means opus is faster). ``--before DIR`` adds an older opus tree (an
export, e.g. ``git archive 769dc0e | tar -x -C DIR``) as a "before" column of the same run.
Targets: first run <= 0.7, second run <= 0.5 at
10,000 tasks; no slower than doit at 100 tasks.

Every process runs as a user's would: with bytecode caching on (``PYTHONDONTWRITEBYTECODE``
is removed from the environment, and one untimed run writes the caches first).

Start-up (unless ``--no-startup``): ``python -c pass``, ``opus --help`` and ``opus apply`` of
one ``hello-world/v1`` task (installed plugins, SQLite state), medians of 7 runs; targets
``--help`` <= 4x and apply <= 6x bare Python.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OPUS_PLUGIN = textwrap.dedent("""
    import opus

    class NoOp(opus.TaskProcessor):
        api_version = "bench/v1"

        def create(self, task, ctx):
            return {"v": 1}

    @opus.hookimpl
    def opus_register_processors():
        return [NoOp]
""")

DODO = textwrap.dedent("""
    import os

    from doit.tools import config_changed

    N = int(os.environ["BENCH_TASKS"])


    def noop(parent=None):
        return {"v": 1}


    def task_tree():
        yield {"basename": "t0", "actions": [noop], "uptodate": [config_changed({})]}
        for i in range(1, N):
            parent = f"t{(i - 1) // 2}"
            yield {
                "basename": f"t{i}",
                "actions": [noop],
                "getargs": {"parent": (parent, "v")},
                "uptodate": [config_changed({"parent": "${VAR:" + parent + ":v}"})],
            }
""")


def tree_manifests(n: int) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = [
        {"apiVersion": "bench/v1", "kind": "Noop", "metadata": {"name": "t0"}, "spec": {}}
    ]
    for i in range(1, n):
        docs.append(
            {
                "apiVersion": "bench/v1",
                "kind": "Noop",
                "metadata": {"name": f"t{i}"},
                "spec": {"parent": f"${{VAR:t{(i - 1) // 2}:v}}"},
            }
        )
    return docs


def write_workspace(root: Path, n: int) -> None:
    import yaml

    (root / "bench_noop.py").write_text(OPUS_PLUGIN)
    (root / "dodo.py").write_text(DODO)
    manifests = root / "tasks"
    manifests.mkdir()
    docs = tree_manifests(n)
    for start in range(0, n, 1000):
        with open(manifests / f"tasks-{start // 1000:03d}.yaml", "w") as handle:
            yaml.safe_dump_all(docs[start : start + 1000], handle, sort_keys=False)


def environment(**extra: str) -> dict[str, str]:
    """This environment with bytecode caching on and ``extra`` set (PYTHONPATH prepended)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if "PYTHONPATH" in extra and env.get("PYTHONPATH"):
        extra["PYTHONPATH"] += os.pathsep + env["PYTHONPATH"]
    return {**env, **extra}


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(command[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return elapsed


#: ``--before DIR``: an export of an older opus tree, run as the "before" column.
BEFORE: list[str] = []


def before_runs(root: Path, n: int, parallelism: int) -> tuple[float, float]:
    return opus_runs(root, n, parallelism, prefix=BEFORE)


def opus_runs(
    root: Path, n: int, parallelism: int, prefix: list[str] | None = None
) -> tuple[float, float]:
    state = root / "opus-state"
    shutil.rmtree(state, ignore_errors=True)
    command = [
        sys.executable, "-m", "opus", "-q", "-p", "bench_noop", "apply",
        "-f", str(root / "tasks"), "--state", f"sqlite:///{state / 'state.db'}",
        "--parallelism", str(parallelism), "--output", "json",
    ]  # fmt: skip
    env = environment(PYTHONPATH=os.pathsep.join([*(prefix or []), str(root)]))
    env["OPUS_CACHE_DIR"] = str(state / "cache")  # the first run parses, the second reads it
    return timed(command, env, root), timed(command, env, root)


def doit_runs(root: Path, n: int, parallelism: int) -> tuple[float, float]:
    db = root / "doit-state"
    shutil.rmtree(db, ignore_errors=True)
    db.mkdir()
    command = [
        sys.executable, "-m", "doit", "run", "-f", str(root / "dodo.py"),
        "--db-file", str(db / "doit.db"),
    ]  # fmt: skip
    env = environment(BENCH_TASKS=str(n))
    return timed(command, env, root), timed(command, env, root)


TOOLS: dict[str, Callable[[Path, int, int], tuple[float, float]]] = {
    "opus": opus_runs,
    "doit": doit_runs,
    "before": before_runs,
}


def compare(sizes: list[int], tools: list[str], repeat: int, parallelism: int) -> None:
    print(f"binary tree, each task uses its parent's output; whole CLI process; median of {repeat}")
    header = f"{'tasks':>7} {'run':<7}" + "".join(f" {t + ' s':>9}" for t in tools)
    ratio = len(tools) >= 2 and tools[:2] == ["opus", "doit"]
    extra = " before/doit" if "before" in tools else ""
    print(header + (f" {'opus/doit':>10}" if ratio else "") + extra)
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="opus-vs-doit-") as tmp:
            root = Path(tmp)
            write_workspace(root, n)
            samples: dict[str, list[tuple[float, float]]] = {t: [] for t in tools}
            for tool in tools:  # untimed: writes bytecode caches
                TOOLS[tool](root, min(n, 10), parallelism)
            for _ in range(repeat):
                for tool in tools:  # interleaved, so a busy moment hits both
                    samples[tool].append(TOOLS[tool](root, n, parallelism))
        for index, label in ((0, "first"), (1, "second")):
            medians = [statistics.median(s[index] for s in samples[t]) for t in tools]
            line = f"{n:>7} {label:<7}" + "".join(f" {m:9.3f}" for m in medians)
            if ratio:
                line += f" {medians[0] / medians[1]:9.2f}x"
            if extra:
                line += f" {medians[tools.index('before')] / medians[1]:10.2f}x"
            print(line, flush=True)


def startup(repeat: int) -> None:
    """Start-up figures (and the ``--before`` tree's, when given)."""
    with tempfile.TemporaryDirectory(prefix="opus-startup-") as tmp:
        root = Path(tmp)
        (root / "hello.yaml").write_text(
            "apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata:\n  name: hi\n"
            "spec:\n  path: hello.txt\n"
        )
        env = environment()
        apply = [
            sys.executable, "-m", "opus", "apply", "-f", str(root / "hello.yaml"),
            "--state", f"sqlite:///{root / 'state.db'}",
        ]  # fmt: skip
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "opus --help": [sys.executable, "-m", "opus", "--help"],
            "opus apply (1 task)": apply,
        }
        envs = {label: env for label in commands}
        if BEFORE:
            before_env = environment(PYTHONPATH=os.pathsep.join(BEFORE))
            commands["before: --help"] = commands["opus --help"]
            commands["before: apply (1 task)"] = [
                *apply[:-1],
                f"sqlite:///{root / 'state-before.db'}",  # an older schema
            ]
            envs["before: --help"] = envs["before: apply (1 task)"] = before_env
        samples: dict[str, list[float]] = {label: [] for label in commands}
        for label, command in commands.items():  # untimed: writes bytecode caches
            timed(command, envs[label], root)
        for _ in range(repeat):
            for label, command in commands.items():
                samples[label].append(timed(command, envs[label], root))
    bare = statistics.median(samples["python -c pass"])
    print(f"\nstart-up, median of {repeat}")
    print(f"{'command':<22} {'ms':>7} {'x python':>9}")
    for label, values in samples.items():
        median = statistics.median(values)
        print(f"{label:<22} {median * 1000:7.1f} {median / bare:8.1f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[10000, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=10)
    parser.add_argument("--tools", nargs="+", choices=["opus", "doit"], default=["opus", "doit"])
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also run an export of an older opus tree (git archive REV | tar -x -C DIR) "
        "as a 'before' column in the same run",
    )
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--startup-repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if args.before:
        base = Path(args.before).resolve()
        BEFORE[:] = [str(base), *(str(d) for d in sorted((base / "plugins").glob("*")))]
        args.tools = [*args.tools, "before"]
    if "doit" in args.tools:
        try:
            import doit  # noqa: F401
        except ImportError:
            raise SystemExit(
                "doit is not installed: pip install -r benchmarks/requirements.txt"
            ) from None
    compare(args.tasks, args.tools, args.repeat, args.parallelism)
    if not args.no_startup:
        startup(args.startup_repeat)


if __name__ == "__main__":
    main()
