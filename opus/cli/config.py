"""Project defaults from ``opus.yaml`` or ``[tool.opus]`` in ``pyproject.toml``.

Precedence, per setting: command line > ``OPUS_*`` environment variable > config file >
built-in default. The file's values become click's ``default_map``, which click consults
after the command line and the option's ``envvar`` and before the option's default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import ConfigError

#: Files looked for in the working directory, in order (the first that exists wins).
CONFIG_FILES = ("opus.yaml", "opus.yml", "pyproject.toml")


def _positive_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError("expected an integer >= 1")


def seconds(value: Any, *, zero: bool = False) -> float:
    """``value`` as a timeout in seconds: finite, > 0 (>= 0 with ``zero``) and at most
    :data:`~opus.manifest_schema.MAX_TIMEOUT`; :class:`ValueError` saying what is expected."""
    from ..manifest_schema import timeout_problem  # when a timeout is set: start-up stays quick

    problem = timeout_problem(value, zero=zero)
    if problem:
        raise ValueError(problem.replace("must be", "expected", 1))
    return float(value)


def _lock_timeout(value: Any) -> float:
    return seconds(value, zero=True)  # 0: do not wait


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("expected a string or a list of strings")
    return list(value)


def _plugin_sections(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()
    ):
        raise ValueError("expected a mapping of plugin name to a mapping of its settings")
    return {k: dict(v) for k, v in value.items()}


def _limits(value: Any) -> list[str]:
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping of group name to an integer >= 1")
    out = []
    for group, limit in value.items():
        try:
            out.append(f"{group}={_positive_int(limit)}")
        except ValueError:
            raise ValueError(f"group {group!r}: expected an integer >= 1") from None
    return out


class Setting(NamedTuple):
    """One config key: how to check it and which click parameter it is a default for.

    (A named tuple, not a dataclass: it is made at every start, and costs a third.)"""

    check: Callable[[Any], Any]
    param: str
    group_level: bool = False  # an option of ``opus`` itself rather than of subcommands


#: Every key a config file may hold.
SETTINGS: dict[str, Setting] = {
    "state": Setting(_string, "state_url"),
    "context": Setting(_string, "context"),
    "parallelism": Setting(_positive_int, "parallelism"),
    "executor": Setting(_string, "executor"),
    "values": Setting(_strings, "values_files"),
    "group_limits": Setting(_limits, "group_limits"),
    "lock_timeout": Setting(_lock_timeout, "lock_timeout"),
    "task_timeout": Setting(seconds, "task_timeout"),
    "keep_going": Setting(_boolean, "keep_going"),
    "progress": Setting(_boolean, "progress"),
    "refresh": Setting(_boolean, "refresh"),
    "assume_yes": Setting(_boolean, "assume_yes"),
    "protected": Setting(_strings, "protected"),  # no option: only the config file sets it
    # no option: the config file or the environment (OPUS_NO_CACHE, OPUS_CACHE_DIR)
    "cache": Setting(_boolean, "cache"),
    "cache_dir": Setting(_string, "cache_dir"),
    "disable_plugins": Setting(_strings, "disabled", group_level=True),
    "plugins": Setting(_strings, "plugin_modules", group_level=True),
}

#: The config key holding plugins' own settings (``{plugin name: {...}}``), handed to them
#: by the ``opus_configure`` hook; not a command-line option, so not in :data:`SETTINGS`.
PLUGIN_CONFIG = "plugin_config"


class Config:
    """Settings read from one file (``path`` is ``None`` when there is none)."""

    __slots__ = ("path", "values", "plugin_config")

    def __init__(
        self,
        path: Path | None = None,
        values: dict[str, Any] | None = None,
        plugin_config: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.path = path
        self.values: dict[str, Any] = {} if values is None else values
        self.plugin_config: dict[str, dict[str, Any]] = (
            {} if plugin_config is None else plugin_config
        )

    def __repr__(self) -> str:
        return f"Config(path={self.path!r}, values={self.values!r})"

    def params(self, *, group_level: bool = False) -> dict[str, Any]:
        """``{click parameter name: value}`` for subcommands (or for ``opus`` itself)."""
        return {
            SETTINGS[key].param: value
            for key, value in self.values.items()
            if SETTINGS[key].group_level == group_level
        }

    def default_map(self, groups: frozenset[str]) -> CommandDefaults:
        return CommandDefaults(self.params(), groups)


class CommandDefaults(dict):  # type: ignore[type-arg]
    """A click ``default_map`` offering the same defaults to every subcommand.

    Run commands are made on demand from the command map, so they cannot be listed up
    front; nested groups (``state``, ``runs``) get the same mapping for their commands.
    """

    def __init__(self, params: Mapping[str, Any], groups: frozenset[str]) -> None:
        super().__init__()
        self.params = dict(params)
        self.groups = groups

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.groups:
            return CommandDefaults(self.params, frozenset())
        return dict(self.params)


def find_config(cwd: Path | None = None) -> Path | None:
    """The config file of the working directory, if any."""
    base = cwd or Path.cwd()
    for name in CONFIG_FILES:
        path = base / name
        if path.is_file() and (name != "pyproject.toml" or _has_tool_section(path)):
            return path
    return None


def _has_tool_section(path: Path) -> bool:
    try:
        return "[tool.opus]" in path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    if path.suffix == ".toml":
        import tomllib

        try:
            return tomllib.loads(text).get("tool", {}).get("opus", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    from ..yamlsafe import YamlProblem, load

    try:
        data = load(text)
    except YamlProblem as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from None
    return {} if data is None else data


def load_config(path: str | Path | None = None, cwd: Path | None = None) -> Config:
    """Read and check ``path`` (or the working directory's config file); raise
    :class:`ConfigError` naming the file and the key on a bad value."""
    if path is None:
        found = find_config(cwd)
        if found is None:
            return Config()
        path = found
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    data = _read(path)
    where = f"{path} [tool.opus]" if path.suffix == ".toml" else str(path)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(data).__name__}")
    values: dict[str, Any] = {}
    plugin_config: dict[str, dict[str, Any]] = {}
    for raw_key, raw in data.items():
        key = str(raw_key).replace("-", "_")
        if key == PLUGIN_CONFIG:
            try:
                plugin_config = _plugin_sections(raw)
            except ValueError as exc:
                raise ConfigError(f"{where}: key {raw_key!r}: {exc}, got {raw!r}") from None
            continue
        setting = SETTINGS.get(key)
        if setting is None:
            import difflib

            keys = [*SETTINGS, PLUGIN_CONFIG]
            close = difflib.get_close_matches(key, keys, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            known = ", ".join(sorted(keys))
            raise ConfigError(f"{where}: unknown key {raw_key!r} ({hint}known keys: {known})")
        try:
            value = setting.check(raw)
        except ValueError as exc:
            raise ConfigError(f"{where}: key {raw_key!r}: {exc}, got {raw!r}") from None
        if key == "values":  # relative to the config file, like a path written in it
            value = [str(path.parent / v) if not Path(v).is_absolute() else v for v in value]
        if key == "cache_dir":
            value = str((path.parent / Path(value).expanduser()).absolute())
        values[key] = value
    return Config(path, values, plugin_config)
