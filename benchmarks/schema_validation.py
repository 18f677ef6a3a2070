"""Spec schema checking: jsonschema vs fastjsonschema, and its cost in ``opus validate``.

    python benchmarks/schema_validation.py [--tasks 10000] [--repeat 5] [--no-cli]

Writes 10 manifest files holding ``--tasks`` tasks of the four first-party processors
(hello-world/v1, file/v1, shell/v1, http/v1, some with ``${VAR:...}`` references and
dependencies), then prints, best of ``--repeat``:

1. the time to check every raw spec against its processor's schema, compiled once, with
   ``jsonschema`` (``is_valid``; and ``iter_errors`` with the reference-tolerant validator,
   what opus does for an invalid spec), ``fastjsonschema`` (if installed; it cannot let a
   ``${...}`` string stand for another type, so specs with references count as invalid
   there) and opus' plain-Python shortcut (``opus.schemashortcut``, what opus asks first);
2. ``opus validate`` of those files, with and without the schema checks (spec and
   metadata), in CPU seconds, each in a fresh interpreter: reading and validating only
   (after start-up and plugin loading, the processor modules imported first: validation
   imports them with or without schema checks; compiling the schemas included; the cyclic
   garbage collector paused, as the command pauses it meanwhile), and the whole
   ``opus validate`` command (start-up included); then the CPU time spent inside the
   schema checks, measured directly in the run with them (steadier than a difference of
   two runs on a busy machine). Target: schema checking adds at most 20 %.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from opus import Engine

FILES = 10


def task(i: int) -> dict[str, Any]:
    """The i-th task: each processor in turn, every fifth with references and a dependency."""
    name = f"t{i:05d}"
    kind = i % 4
    ref = i % 5 == 0
    metadata: dict[str, Any] = {"name": name, "labels": {"app": "bench", "n": str(i % 7)}}
    if i and ref:
        metadata["dependencies"] = [{"tasks": [f"t{i - 1:05d}"]}]
    if kind == 0:
        spec: dict[str, Any] = {"path": f"/tmp/opus-bench/{name}.txt", "content": f"task {i}"}
        api = "hello-world/v1"
    elif kind == 1:
        spec = {
            "path": "${VAR:root}" if ref else f"/tmp/opus-bench/{name}",
            "mode": "0644",
            "content": "x" * 40,
            "makeDirs": True,
        }
        api = "file/v1"
    elif kind == 2:
        spec = {
            "create": ["echo create", "echo more"],
            "delete": "echo delete",
            "env": {"A": "1", "B": {"value": "${VAR:secret}" if ref else "s", "sensitive": True}},
            "timeout": "${VAR:timeout}" if ref else 30,
        }
        api = "shell/v1"
    else:
        spec = {
            "url": "http://127.0.0.1:9/items",
            "headers": {"Accept": "application/json"},
            "retries": 2,
            "create": {"method": "POST", "json": {"n": i}, "expect_status": [200, 201]},
            "delete": {"method": "DELETE", "url": "http://127.0.0.1:9/items/1"},
        }
        api = "http/v1"
    return {"apiVersion": api, "kind": "Bench", "metadata": metadata, "spec": spec}


def write_manifests(root: Path, count: int) -> list[Path]:
    tasks = [task(i) for i in range(count)]
    per_file = -(-count // FILES)
    files = []
    for n in range(FILES):
        path = root / f"tasks-{n:02d}.yaml"
        chunk = tasks[n * per_file : (n + 1) * per_file]
        path.write_text(yaml.safe_dump_all(chunk, sort_keys=False))
        files.append(path)
    return files


def best(repeat: int, func: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def library_rows(tasks: list[dict[str, Any]], repeat: int) -> list[tuple[str, float, str]]:
    from jsonschema import Draft202012Validator

    from opus.specschema import compile_schema

    engine = Engine(state="memory://", entry_points=True)
    registry = engine.plugins.processors()
    schemas = {api: registry.get(api).spec_schema for api in {t["apiVersion"] for t in tasks}}
    compiled = {api: compile_schema(s) for api, s in schemas.items()}
    plain = [(Draft202012Validator(schemas[t["apiVersion"]]), t["spec"]) for t in tasks]
    fast = [(compiled[t["apiVersion"]].fast, t["spec"]) for t in tasks]
    thorough = [(compiled[t["apiVersion"]].thorough, t["spec"]) for t in tasks]
    rows = []
    rows.append(
        (
            "jsonschema is_valid (compiled once)",
            best(repeat, lambda: [v.is_valid(s) for v, s in plain]),
            f"{sum(v.is_valid(s) for v, s in plain)} valid as written",
        )
    )
    rows.append(
        (
            "jsonschema iter_errors, reference-tolerant",
            best(repeat, lambda: [list(v.iter_errors(s)) for v, s in thorough]),
            f"{sum(not list(v.iter_errors(s)) for v, s in thorough)} valid",
        )
    )
    shortcut = [(getattr(compiled[t["apiVersion"]], "plain", None), t["spec"]) for t in tasks]
    rows.append(
        (
            "opus plain-Python shortcut (schemashortcut)",
            best(repeat, lambda: [check(s) for check, s in shortcut if check is not None]),
            f"{sum(bool(check and check(s)) for check, s in shortcut)} certainly valid",
        )
    )
    rows.append(
        (
            "opus spec_problems (shortcut first)",
            best(repeat, lambda: [compiled[t["apiVersion"]].problems(t["spec"]) for t in tasks]),
            f"{sum(not compiled[t['apiVersion']].problems(t['spec']) for t in tasks)} valid",
        )
    )
    rows.append(
        (
            "fastjsonschema, reference-tolerant copy (opus)",
            best(repeat, lambda: [v.is_valid(s) for v, s in fast]),
            f"{sum(v.is_valid(s) for v, s in fast)} valid; {type(fast[0][0]).__name__}",
        )
    )
    try:
        import fastjsonschema
    except ImportError:
        rows.append(("fastjsonschema as written", float("nan"), "not installed"))
        return rows
    start = time.perf_counter()
    checkers = {api: fastjsonschema.compile(dict(s)) for api, s in schemas.items()}
    compile_time = time.perf_counter() - start
    checks = [(checkers[t["apiVersion"]], t["spec"]) for t in tasks]

    def run_fast() -> int:
        ok = 0
        for check, spec in checks:
            try:
                check(spec)
                ok += 1
            except fastjsonschema.JsonSchemaException:
                pass
        return ok

    rows.append(
        (
            "fastjsonschema as written (compiled once)",
            best(repeat, run_fast),
            f"{run_fast()} valid as written; compile {compile_time * 1000:.0f} ms",
        )
    )
    return rows


_NO_SCHEMAS = (
    "import opus.validation as v; "
    "v.check_specs = lambda tasks, registry: []; "
    "v.check_metadata = lambda tasks, commands=(): (list(tasks), []); "
)


_IN_PROCESS = """
import sys, time
import opus.validation as validation
from opus import Engine
from opus.cli.inputs import check, read_inputs
spent = [0.0]
def timed(func):
    def wrapper(*args, **kwargs):
        start = time.process_time()
        try:
            return func(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - start
    return wrapper
validation.check_specs = timed(validation.check_specs)
validation.check_metadata = timed(validation.check_metadata)
engine = Engine(state="memory://")
registry = engine.plugins.processors()
for api in registry.api_versions():  # imported by validation with or without schema checks
    registry.get(api)
from opus.collector import paused
with paused():  # as `opus validate` reads and checks (opus.cli.run_cmd.execute)
    start = time.process_time()
    inputs = read_inputs(sys.argv[1:], "bench", ["root=/tmp/x", "timeout=5", "secret=s"], [])
    check(engine, "apply", inputs, "bench")
    print(time.process_time() - start, spent[0])
"""


def in_process(files: list[Path], schemas: bool) -> float:
    """CPU seconds of reading and validating (compiling the schemas included), after
    start-up and plugin loading (processor modules included), in a fresh interpreter."""
    return _in_process(files, schemas)[0]


def _in_process(files: list[Path], schemas: bool) -> tuple[float, float]:
    """(CPU seconds of reading and validating, of which in the schema checks)."""
    code = (_NO_SCHEMAS if not schemas else "") + _IN_PROCESS
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, files)], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"validation failed: {done.stderr[-2000:]}")
    total, checks = done.stdout.strip().splitlines()[-1].split()
    return float(total), float(checks)


def cli(files: list[Path], schemas: bool) -> float:
    code = (_NO_SCHEMAS if not schemas else "") + (
        "import sys; from opus.cli.app import main; sys.exit(main(sys.argv[1:]))"
    )
    args = ["validate", *(f"-f{f}" for f in files), "--context", "bench"]
    args += ["--var", "root=/tmp/x", "--var", "timeout=5", "--var", "secret=s"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"opus validate failed: {done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-cli", action="store_true")
    args = parser.parse_args()
    tasks = [task(i) for i in range(args.tasks)]
    print(f"checking {args.tasks} raw specs (4 processors), best of {args.repeat}")
    print(f"{'library / mode':48} {'total ms':>9} {'µs/spec':>8}  notes")
    for label, seconds, note in library_rows(tasks, args.repeat):
        print(f"{label:48} {seconds * 1000:9.1f} {seconds / args.tasks * 1e6:8.1f}  {note}")
    with tempfile.TemporaryDirectory() as tmp:
        files = write_manifests(Path(tmp), args.tasks)
        print(
            f"\nopus validate, {args.tasks} tasks in {FILES} files, CPU seconds (user+sys, "
            f"less disturbed by a busy machine than wall time), best of {args.repeat}"
        )
        print(f"{'how':48} {'no schemas':>10} {'schemas':>9} {'added':>7}")
        modes: list[tuple[str, Callable[[list[Path], bool], float]]] = [
            ("read + validate (after start-up)", in_process)
        ]
        if not args.no_cli:
            modes.append(("python -m opus validate (start-up included)", cli))
        for label, measure in modes:
            runs: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.repeat):  # interleaved, so that load on the machine hits both
                for schemas in (False, True):
                    runs[schemas].append(measure(files, schemas))
            without, with_ = min(runs[False]), min(runs[True])
            added = (with_ - without) / without * 100
            print(f"{label:48} {without:9.2f}s {with_:8.2f}s {added:6.1f}%")
        shares = [_in_process(files, True) for _ in range(args.repeat)]
        total, checks = min(shares)
        print(
            f"\ntime inside the schema checks (metadata + specs, compiling included), measured "
            f"directly: {checks:.2f}s of {total:.2f}s = {checks / (total - checks) * 100:.1f}% "
            "added to reading and validating"
        )


if __name__ == "__main__":
    main()
