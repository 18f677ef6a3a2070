"""Start-up stays cheap: what ``import opus`` and the CLI load, and lazily loaded processors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from support_processors import RecordingProcessor, make_task

import opus
from opus import Engine, LazyProcessor, PluginError, Plugins, hookimpl

#: Modules of the first-party plugins' processors (pip-installed in the test environment).
PROCESSOR_MODULES = (
    "opus_http.processor",
    "opus_shell.processor",
    "opus_file.processor",
    "opus_hello_world.processor",
)
#: What start-up avoids: importlib.metadata (and the email/zipfile/csv it imports) -- opus
#: reads entry points itself (opus.entrypoints) -- and the slow output/validation libraries.
AVOIDED_AT_START = ("importlib.metadata", "email", "zipfile", "csv", "rich", "jsonschema")


def loaded_after(code: str, cwd: Path | None = None) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; return ``{"modules": [...], "out": ...}``."""
    script = textwrap.dedent(code) + textwrap.dedent("""
        import json as _json, sys as _sys
        _sys.__stdout__.write("\\n@@" + _json.dumps(sorted(_sys.modules)) + "\\n")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    out, _, modules = proc.stdout.rpartition("\n@@")
    return {"modules": set(json.loads(modules)), "out": out}


def cli_run(*argv: str) -> str:
    """Code that runs ``opus ARGV`` in process and expects it to exit 0 (for loaded_after)."""
    return textwrap.dedent(f"""
        from opus.cli import main
        try:
            main({list(argv)!r})
        except SystemExit as exc:
            assert exc.code == 0, exc.code
    """)


def plain_workspace(tmp_path: Path) -> list[str]:
    """A plugin module with a processor that has no spec schema and outputs ``v``, two
    tasks (``b`` reads ``a``'s output); the arguments that apply them with SQLite state."""
    (tmp_path / "plain_plugin.py").write_text(
        textwrap.dedent("""
            import opus

            class Plain(opus.TaskProcessor):
                api_version = "plain/v1"  # no spec_schema

                def create(self, task, ctx):
                    return {"v": 1}

            @opus.hookimpl
            def opus_register_processors():
                return [Plain]
        """)
    )
    (tmp_path / "t.yaml").write_text(
        "apiVersion: plain/v1\nkind: Plain\nmetadata: {name: a}\n---\n"
        "apiVersion: plain/v1\nkind: Plain\nmetadata: {name: b}\nspec: {x: '${VAR:a:v}'}\n"
    )
    return [
        "-q",
        "-p",
        "plain_plugin",
        "apply",
        "-f",
        "t.yaml",
        "--state",
        f"sqlite:///{tmp_path}/s.db",
    ]


def test_import_opus_loads_no_engine_no_rich_no_yaml() -> None:
    result = loaded_after("import opus")
    modules = result["modules"]
    assert isinstance(modules, set)
    for heavy in ("opus.engine", "opus.run", "rich", "yaml", "secrets", "sqlite3", "pluggy"):
        assert heavy not in modules, heavy


def test_public_names_resolve_on_first_use() -> None:
    for name in opus.__all__:
        assert getattr(opus, name) is not None, name
    assert opus.Engine.__module__ == "opus.engine"
    assert set(opus.__all__) <= set(dir(opus))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        opus.Nope  # noqa: B018


def test_help_imports_no_processor_module_and_no_rich() -> None:
    result = loaded_after(cli_run("--help"))
    modules = result["modules"]
    assert isinstance(modules, set)
    assert "opus_http" in modules and "opus_shell" in modules  # the plugins are loaded ...
    for name in (*PROCESSOR_MODULES, *AVOIDED_AT_START, "secrets", "opus.model", "yaml"):
        assert name not in modules, name  # ... but not their processors
    assert "apply" in str(result["out"])


def test_apply_imports_only_the_processors_its_tasks_use(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata: {name: hi}\n"
        "spec: {path: hi.txt}\n---\n"
        "apiVersion: file/v1\nkind: File\nmetadata: {name: f}\n"
        "spec: {path: f.txt, content: x}\n"
    )
    result = loaded_after(
        cli_run("-q", "apply", "-f", "t.yaml", "--state", f"sqlite:///{tmp_path}/s.db"),
        cwd=tmp_path,
    )
    modules = result["modules"]
    assert isinstance(modules, set)
    assert "opus_file.processor" in modules and "opus_hello_world.processor" in modules
    assert "opus_http.processor" not in modules and "opus_shell.processor" not in modules
    for name in AVOIDED_AT_START:
        assert name not in modules, name
    # the run keeps its report, but neither plans nor draws anything; no socket for the host
    assert "opus.report.document" in modules
    for name in ("opus.report.html", "opus.report.data", "opus.saved_plan", "socket"):
        assert name not in modules, name
    # opus' other subcommands are imported when used (or listed by --help), not for apply
    for name in ("config_cmd", "state_cmd", "inspect_cmd", "import_cmd", "plugins_cmd"):
        assert f"opus.cli.{name}" not in modules, name
    assert "click.shell_completion" not in modules  # only when completing
    assert "opus.cli.plan_view" not in modules  # only to print a plan
    assert (tmp_path / "hi.txt").exists() and (tmp_path / "f.txt").read_text() == "x"


def test_no_schema_library_when_no_task_needs_a_schema(tmp_path: Path) -> None:
    result = loaded_after(cli_run(*plain_workspace(tmp_path)), cwd=tmp_path)
    modules = result["modules"]
    assert isinstance(modules, set)
    assert "plain_plugin" in modules
    # names alone need no metadata schema, and no processor has a spec schema
    assert "fastjsonschema" not in modules and "jsonschema" not in modules


def test_plugins_listing_loads_every_processor() -> None:
    plugins = Plugins()
    described = plugins.describe()["processors"]
    assert described["http/v1"]["class"] == "opus_http.processor.HttpProcessor"
    assert described["shell/v1"]["plugin"] == "shell"


def module_plugin(name: str, *processors: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.opus_register_processors = hookimpl(lambda: list(processors))  # type: ignore[attr-defined]
    return module


RECORDING = f"{RecordingProcessor.__module__}:{RecordingProcessor.__qualname__}"


def test_a_lazy_processor_runs_tasks() -> None:
    lazy = LazyProcessor(RecordingProcessor.api_version, RECORDING)
    with Engine(state="memory://", entry_points=False) as engine:
        engine.register(module_plugin("lazy", lazy))
        result = engine.run("apply", [make_task("a")])
    assert result.ok and result.tasks["a"].status == "done"


def test_lazy_and_eager_registration_of_one_class_is_harmless() -> None:
    plugins = Plugins(entry_points=False)
    plugins.register(module_plugin("eager", RecordingProcessor))
    plugins.register(
        module_plugin("lazy", LazyProcessor(RecordingProcessor.api_version, RECORDING))
    )
    assert type(plugins.processors().get(RecordingProcessor.api_version)) is RecordingProcessor


def test_lazy_processor_conflicting_with_another_class_names_both() -> None:
    plugins = Plugins(entry_points=False)
    plugins.register(
        module_plugin("lazy", LazyProcessor(RecordingProcessor.api_version, "elsewhere:Other"))
    )
    plugins.register(module_plugin("eager", RecordingProcessor))
    with pytest.raises(PluginError, match="claimed by two processors: .*elsewhere.Other"):
        plugins.processors().get(RecordingProcessor.api_version)


def test_lazy_processor_that_cannot_be_imported_names_plugin_and_target() -> None:
    plugins = Plugins(entry_points=False)
    plugins.register(module_plugin("broken", LazyProcessor("x/v1", "no_such_module_xyz:P")))
    registry = plugins.processors()
    assert "x/v1" in registry and "x/v1" in registry.api_versions()  # listed without import
    with pytest.raises(PluginError, match="'no_such_module_xyz:P'.*plugin 'broken'"):
        registry.get("x/v1")


def test_lazy_processor_with_another_api_version_is_refused() -> None:
    plugins = Plugins(entry_points=False)
    plugins.register(module_plugin("liar", LazyProcessor("other/v1", RECORDING)))
    with pytest.raises(PluginError, match="but its api_version is"):
        plugins.processors().get("other/v1")
    with pytest.raises(PluginError, match="no processor for apiVersion 'nope/v1'"):
        plugins.processors().get("nope/v1")


def test_a_parse_cache_hit_imports_no_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m").mkdir()
    for name in ("a", "b"):  # two files: every file's key is the same on each run
        (tmp_path / "m" / f"{name}.yaml").write_text(
            f"apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata: {{name: {name}}}\n"
            f"spec: {{path: {name}.txt}}\n"
        )
    monkeypatch.setenv("OPUS_CACHE_DIR", str(tmp_path / "cache"))
    code = cli_run("-q", "apply", "-f", "m", "--state", f"sqlite:///{tmp_path}/s.db")
    first = loaded_after(code, cwd=tmp_path)["modules"]
    assert isinstance(first, set) and "yaml" in first  # parsed, and cached ...
    assert "tempfile" not in first  # ... by opus' own private temp file
    cached = sorted((tmp_path / "cache" / "manifests").iterdir())
    assert len(cached) == 2
    second = loaded_after(code, cwd=tmp_path)["modules"]
    assert isinstance(second, set)
    assert "yaml" not in second and "opus.yamlloader" not in second
    assert sorted((tmp_path / "cache" / "manifests").iterdir()) == cached  # hits, no new entry


def test_a_run_loads_neither_openssl_nor_termios(tmp_path: Path) -> None:
    """opus' own checksums and cache keys use the interpreter's built-in sha256 and blake2b
    (``import hashlib`` loads OpenSSL), and the lock's owner is named without ``getpass``
    (which imports termios); a processor that needs neither loads neither."""
    result = loaded_after(
        cli_run(*plain_workspace(tmp_path))
        + textwrap.dedent(f"""
            from opus import Engine
            with Engine(state="sqlite:///{tmp_path}/s.db") as engine:
                record = engine.state.get("default", "b")
                print(record.spec_checksum, dict(record.applied_spec))
        """),
        cwd=tmp_path,
    )
    modules = result["modules"]
    assert isinstance(modules, set) and "plain_plugin" in modules
    for name in ("hashlib", "_hashlib", "getpass", "termios"):
        assert name not in modules, name
    checksum, spec = str(result["out"]).strip().splitlines()[-1].split(" ", 1)
    assert spec == "{'x': 1}"  # the reference resolved: the run did its work
    assert checksum == hashlib.sha256(b'{"x":1}').hexdigest()  # the same digest as OpenSSL's


def test_the_built_in_digests_are_hashlib_s() -> None:
    from opus import digests

    for data in (b"", b"opus", bytes(range(256)) * 40):
        assert digests.sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
        assert (
            digests.blake2b(data, digest_size=16).digest()
            == hashlib.blake2b(data, digest_size=16).digest()
        )


def test_the_console_entry_keeps_its_modules_frozen_an_in_process_run_does_not(
    tmp_path: Path,
) -> None:
    """``main()`` freezes what start-up loaded out of the garbage collector's sight, and a
    run leaves it so (the process ends: its last collection need not walk it all); a run
    through the click group in a host process (a test, an embedding tool) gives back to the
    collector everything it froze."""
    import gc

    from helpers_cli import invoke

    (tmp_path / "t.yaml").write_text(
        "apiVersion: hello-world/v1\nkind: HelloWorld\nmetadata: {name: hi}\nspec: {path: hi.txt}\n"
    )
    result = loaded_after(
        cli_run("-q", "apply", "-f", "t.yaml", "--state", f"sqlite:///{tmp_path}/s.db")
        + 'import gc\nprint("frozen", gc.get_freeze_count() > 1000, gc.isenabled())\n',
        cwd=tmp_path,
    )
    assert "frozen True True" in str(result["out"])
    assert gc.get_freeze_count() == 0
    done = invoke(tmp_path, "-q", "apply", "-f", "t.yaml", "--state", f"sqlite:///{tmp_path}/b.db")
    assert done.returncode == 0, done.stderr
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_lazy_exports_imports_a_name_on_first_use_and_keeps_it(tmp_path: Path) -> None:
    """opus.lazyload.lazy_exports, as the first-party plugins use it."""
    package = tmp_path / "lazypkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from opus.lazyload import lazy_exports\n"
        "__getattr__ = lazy_exports(__name__, {'Thing': '.heavy', 'dumps': 'json'})\n"
    )
    (package / "heavy.py").write_text("Thing = object()\n")
    result = loaded_after(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import lazypkg
        assert "lazypkg.heavy" not in sys.modules
        thing = lazypkg.Thing
        assert "lazypkg.heavy" in sys.modules and vars(lazypkg)["Thing"] is thing
        import json
        assert lazypkg.dumps is json.dumps
        try:
            lazypkg.Missing
        except AttributeError as exc:
            print(exc)
        """,
        cwd=tmp_path,
    )
    assert "module 'lazypkg' has no attribute 'Missing'" in str(result["out"])


def test_threads_asking_for_a_lazy_processor_at_once_all_get_it(
    tmp_path: Path, monkeypatch
) -> None:
    # an executor's threads (a Dask worker's) ask for a processor that is not imported yet:
    # one imports it, the others wait for it (they got KeyError while it was half loaded)
    import threading
    import time

    from opus.registry import ProcessorRegistry

    (tmp_path / "slow_processor_module.py").write_text(
        "import time\nfrom opus import TaskProcessor\ntime.sleep(0.2)\n\n"
        "class Slow(TaskProcessor):\n    api_version = 'slow/v1'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = ProcessorRegistry()
    registry.add(LazyProcessor("slow/v1", "slow_processor_module:Slow"), "test")
    got: list[object] = []
    missing: list[str] = []
    start = threading.Barrier(8)
    loading = True

    def ask() -> None:
        start.wait()
        try:
            got.append(registry.get("slow/v1"))
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            got.append(exc)

    def look() -> None:  # `in` must never miss it while it is being loaded
        while loading:
            if "slow/v1" not in registry:
                missing.append("slow/v1")
            time.sleep(0)

    watcher = threading.Thread(target=look)
    watcher.start()
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loading = False
    watcher.join()
    assert len(got) == 8 and all(g is got[0] for g in got), got
    assert type(got[0]).__name__ == "Slow" and missing == []
