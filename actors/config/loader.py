"""Reading ``config/llms``: every file validated, every problem collected, one ``ConfigError``.

Layout (SPEC §3)::

    llms/provider/<provider>/<model>.yaml    one model instance each
    llms/groups/<group>.yaml                 task groups (files starting with _ are not groups)
    llms/groups/_task_groups.yaml            optional registry; enabled: false skips a file
    llms/polling_pools/<pool>.yaml           polling pools
    llms/wrappers.yaml                       optional named wrappers
    llms/global_fallback.yaml                optional legacy file (migration input)
    llms/state.yaml                          optional; where request state lives (absent: here)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from actors.config.diagnostics import format_path, issues_from_validation
from actors.config.env import bare_variable, expand, substitute
from actors.config.groups import TaskGroupConfig
from actors.config.instances import KEYED_TYPES, ModelConfig, header_value_problem
from actors.config.pools import PollingPoolConfig
from actors.config.refs import Sources, check_references
from actors.config.registry import GlobalFallbackConfig, RegistryConfig
from actors.config.shape import MAX_DEPTH, nests_too_deep, shape_problem
from actors.config.state import StateConfig
from actors.config.topology import LLMConfig
from actors.config.wrappers import WrapperConfig
from actors.errors import ConfigError, ConfigIssue
from actors.secrets import Masker

__all__ = ["find_llms_dir", "load_config"]

_YAML_SUFFIXES = (".yaml", ".yml")
_NOT_READ = object()


def load_config(
    path: str | os.PathLike[str] = "config", *, environ: Mapping[str, str] | None = None
) -> LLMConfig:
    """Load and validate the configuration under ``path`` (a ``config`` dir or its ``llms`` dir).

    ``environ`` (default ``os.environ``) supplies ``${VAR}`` values. Raises ``ConfigError``
    listing every problem found, each with its file and field path.
    """
    root = find_llms_dir(path)
    return _Loader(root, os.environ if environ is None else environ).load()


def find_llms_dir(path: str | os.PathLike[str]) -> Path:
    """The ``llms`` directory for ``path``, which may be the config dir or ``llms`` itself."""
    base = Path(path)
    if not base.exists():
        where = "" if base.is_absolute() else f" (looked in {Path.cwd()})"
        raise ConfigError(
            f"configuration directory {str(base)!r} does not exist{where}; pass the directory that "
            "holds llms/: llm-actors COMMAND --config DIR (check takes DIR as its argument), or "
            "Runtime.from_config(DIR) in code",
            file=str(base),
        )
    if (base / "llms").is_dir():
        return base / "llms"
    if base.is_dir() and any((base / d).is_dir() for d in ("provider", "groups", "polling_pools")):
        return base
    raise ConfigError(
        f"no configuration in {str(base)!r}: expected a directory containing llms/, or the llms "
        "directory itself (with provider/, groups/ and polling_pools/)",
        file=str(base),
    )


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects a key given twice in one mapping (PyYAML keeps the last)."""


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    # Only the keys written in this mapping are checked, before the merge (<<) keys are
    # flattened in: YAML 1.1 lets a written key override a merged one, and the base
    # constructor does so (merged pairs come first, and the last one wins).
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key; the base constructor reports it
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"key {key!r} appears twice (first on line {first + 1}); keep one",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Loader:
    def __init__(self, root: Path, environ: Mapping[str, str]) -> None:
        self.root = root
        self.environ = environ
        self.issues: list[ConfigIssue] = []
        self.sources = Sources()
        self.secrets: set[str] = set()
        self.models: dict[str, ModelConfig] = {}
        self.groups: dict[str, TaskGroupConfig] = {}
        self.pools: dict[str, PollingPoolConfig] = {}
        self.wrappers: dict[str, WrapperConfig] = {}
        self.registry: RegistryConfig | None = None
        self.global_fallback: GlobalFallbackConfig | None = None
        self.state = StateConfig()

    # ----------------------------------------------------------------------------- driver

    def load(self) -> LLMConfig:
        registry_path = self.root / "groups" / "_task_groups.yaml"
        if registry_path.is_file():
            self.registry = self._validate(
                RegistryConfig, registry_path, self._read(registry_path), kind=None
            )
        self._load_models()
        for name, path in self._files("group", "groups", "task_groups").items():
            self._load_named(TaskGroupConfig, "group", name, path, drop=("tiers",))
        for name, path in self._files("pool", "polling_pools", "polling_pools").items():
            self._load_named(PollingPoolConfig, "pool", name, path)
        self._load_wrappers()
        self._load_global_fallback()
        self._load_state()
        wrappers_file = self._show(self.root / "wrappers.yaml")
        self.issues += check_references(
            self.models, self.groups, self.pools, self.wrappers, self.sources, wrappers_file
        )
        if self.issues:
            # A last guard: no key reaches a message in any form, even through a path we missed.
            masker = Masker(self.secrets)
            raise ConfigError([ConfigIssue(i.file, i.path, masker.mask(i.message)) for i in self.issues])
        config = LLMConfig.model_construct(
            root=self.root,
            models=self.models,
            groups=self.groups,
            pools=self.pools,
            wrappers=self.wrappers,
            registry=self.registry,
            global_fallback=self.global_fallback,
            state=self.state,
        )
        issues = config.mode_issues()
        if issues:
            raise ConfigError(issues)
        return config

    def _issue(self, path: Path | str, field: str, message: str) -> None:
        file = path if isinstance(path, str) else self._show(path)
        self.issues.append(ConfigIssue(file, field, message))

    def _show(self, path: Path) -> str:
        return str(path)

    # ----------------------------------------------------------------------------- files

    def _read(self, path: Path, *, empty_ok: bool = False) -> Any:
        """The parsed document, or ``_NOT_READ`` after recording why not."""
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            self._issue(path, "", f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")
            return _NOT_READ
        except OSError as exc:
            self._issue(path, "", f"cannot read the file: {exc.strerror or exc}")
            return _NOT_READ
        if nests_too_deep(text):
            self._issue(path, "", f"nested more than {MAX_DEPTH} levels deep; flatten it")
            return _NOT_READ
        try:
            data = yaml.load(text, Loader=_UniqueKeyLoader)
        except yaml.MarkedYAMLError as exc:
            self._issue(path, "", _yaml_message(exc))
            return _NOT_READ
        except yaml.YAMLError as exc:
            self._issue(path, "", f"invalid YAML: {exc.__class__.__name__}")
            return _NOT_READ
        except RecursionError:  # the parser recurses once per level
            self._issue(path, "", f"nested more than {MAX_DEPTH} levels deep; flatten it")
            return _NOT_READ
        problem = shape_problem(data)
        if problem is not None:
            self._issue(path, "", problem)
            return _NOT_READ
        if data is None:
            if empty_ok:
                return {}
            self._issue(path, "", "the file is empty; give its settings, or delete it")
            return _NOT_READ
        if not isinstance(data, dict):
            kind = "a list" if isinstance(data, list) else f"a {type(data).__name__}"
            self._issue(path, "", f"must be a mapping of keys to values at the top level, got {kind}")
            return _NOT_READ
        return data

    def _yaml_files(self, folder: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        return sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.suffix in _YAML_SUFFIXES and not p.name.startswith(("_", "."))
        )

    def _files(self, kind: str, folder: str, section: str) -> dict[str, Path]:
        """Group or pool files: those in ``folder``, as the registry adds or disables them."""
        files: dict[str, Path] = {}
        for path in self._yaml_files(self.root / folder):
            if path.stem in files:
                other = self._show(files[path.stem])
                self._issue(path, "", f"{kind} {path.stem!r} is also defined by {other}; keep one file")
                continue
            files[path.stem] = path
        if self.registry is None:
            return files
        registry_file = self._show(self.root / "groups" / "_task_groups.yaml")
        for name, entry in getattr(self.registry, section).items():
            field = f"{section}.{name}"
            if not entry.enabled:
                files.pop(name, None)
                self.sources.disabled[(kind, name)] = f"disabled in {registry_file} (enabled: false)"
                continue
            path = self.root / entry.file
            if not path.is_file():
                self._issue(
                    registry_file,
                    f"{field}.file",
                    f"file {entry.file!r} not found (paths are relative to {self._show(self.root)})",
                )
                self.sources.broken.add((kind, name))
                continue
            if path.stem != name:
                self._issue(
                    registry_file,
                    field,
                    f"the entry is named {name!r} but its file is {entry.file!r}; a {kind} is named "
                    "by its file, so use the file's name for the entry",
                )
                continue
            known = files.get(name)
            if known is not None and known.resolve() != path.resolve():
                self._issue(
                    registry_file,
                    f"{field}.file",
                    f"{kind} {name!r} is also defined by {self._show(known)}; keep one file",
                )
                continue
            files[name] = path
        return files

    # ----------------------------------------------------------------------------- kinds

    def _validate(
        self,
        model: type[BaseModel],
        path: Path,
        raw: Any,
        *,
        kind: str | None,
        name: str = "",
        data: Any = None,
        skip: list[tuple[Any, ...]] | None = None,
        prefix: tuple[Any, ...] = (),
        drop: tuple[str, ...] = (),
        file: str | None = None,
    ) -> Any:
        """Validate ``data`` (default: ``raw`` after substitution) as ``model``; None on failure."""
        if raw is _NOT_READ:
            if kind:
                self.sources.broken.add((kind, name))
            return None
        file = file or self._show(path)
        skip = list(skip or [])
        if data is None:
            sub = substitute(raw, self.environ)
            for where, message in sub.problems:
                self.issues.append(ConfigIssue(file, format_path((*prefix, *where)), message))
                skip.append(where)
            data = sub.data
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            self.issues += issues_from_validation(
                exc, file=file, model=model, raw=raw, prefix=prefix, drop=drop, skip=skip
            )
            if kind:
                self.sources.broken.add((kind, name))
            return None

    def _load_models(self) -> None:
        provider_root = self.root / "provider"
        if not provider_root.is_dir():
            return
        folders = sorted(
            p for p in provider_root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
        )
        for folder in folders:
            for path in self._yaml_files(folder):
                name = path.stem
                if ("model", name) in self.sources.files:
                    other = self.sources.files["model", name]
                    self._issue(
                        path,
                        "",
                        f"model {name!r} is already defined by {other}; model names are file names "
                        "and must be unique across provider folders: rename one file",
                    )
                    continue
                self.sources.files[("model", name)] = self._show(path)
                model = self._load_model(name, folder.name, path)
                if model is not None:
                    self.models[name] = model

    def _load_model(self, name: str, provider: str, path: Path) -> ModelConfig | None:
        raw = self._read(path)
        if raw is _NOT_READ:
            self.sources.broken.add(("model", name))
            return None
        data = dict(raw)
        skip: list[tuple[Any, ...]] = []
        for key, expected, what in (("name", name, "file name"), ("provider", provider, "provider folder")):
            if key in data and data[key] != expected:
                self._issue(
                    path, key, f"{data[key]!r} differs from the {what} {expected!r}; remove {key} or rename"
                )
            data.pop(key, None)
        if "api_key_env" in data:
            self._issue(
                path,
                "api_key_env",
                "unknown key; write api_key: ${VARIABLE} and the loader records the variable",
            )
            data.pop("api_key_env")
        key_raw = data.pop("api_key", None)
        sub = substitute(data, self.environ)
        for where, message in sub.problems:
            self._issue(path, format_path(where), message)
            skip.append(where)
        data = sub.data
        if key_raw is not None:
            data.update(self._api_key(path, key_raw, data.get("model_type"), skip))
        data["name"], data["provider"] = name, provider
        return self._validate(ModelConfig, path, raw, kind="model", name=name, data=data, skip=skip)

    def _api_key(self, path: Path, key_raw: Any, model_type: Any, skip: list) -> dict[str, Any]:
        """The fields ``api_key`` becomes: the key and its variable, or a reason to disable."""
        skip.append(("api_key",))
        if not isinstance(key_raw, str):
            self._issue(path, "api_key", "must be a string, e.g. ${OPENAI_API_KEY}")
            return {}
        bare = bare_variable(key_raw)
        if bare:
            self._issue(
                path, "api_key", f"${bare} is kept as written; write ${{{bare}}} to read the variable"
            )
            return {}
        exp = expand(key_raw, self.environ)
        if exp.errors:
            for message in exp.errors:
                self._issue(path, "api_key", message)
            return {}
        variable = (exp.missing or exp.variables or (None,))[0]
        if exp.missing or (variable and not exp.value.strip() and model_type in KEYED_TYPES):
            return {"api_key_env": variable, "disabled_reason": f"API key variable {variable} is not set"}
        fields: dict[str, Any] = {"api_key_env": variable} if variable else {}
        key = exp.value.strip()  # `export KEY=$(cat keyfile)` keeps the file's line break
        if key:
            self.secrets.add(key)
            problem = header_value_problem(key)
            if problem:
                where = f" (from {variable})" if variable else ""
                self._issue(path, "api_key", f"the key{where} {problem}")
                return {}
            fields["api_key"] = key
        return fields

    def _load_named(
        self, model: type[BaseModel], kind: str, name: str, path: Path, drop: tuple[str, ...] = ()
    ) -> None:
        self.sources.files[(kind, name)] = self._show(path)
        raw = self._read(path)
        if raw is _NOT_READ:
            self.sources.broken.add((kind, name))
            return
        data = dict(raw)
        if "name" in data and data["name"] != name:
            self._issue(
                path,
                "name",
                f"{data['name']!r} differs from the file name {name!r}; "
                f"a {kind} is named by its file: remove name or rename the file",
            )
        if "tiers" in data and kind == "group":
            self._issue(
                path, "tiers", "unknown key; write each tier at the top level (echelon1: {models: [...]})"
            )
            data.pop("tiers")
        data["name"] = name
        sub = substitute(data, self.environ)
        skip = []
        for where, message in sub.problems:
            self._issue(path, format_path(where), message)
            skip.append(where)
        loaded = self._validate(model, path, raw, kind=kind, name=name, data=sub.data, skip=skip, drop=drop)
        if loaded is not None:
            (self.groups if kind == "group" else self.pools)[name] = loaded

    def _load_wrappers(self) -> None:
        path = self.root / "wrappers.yaml"
        if not path.is_file():
            return
        raw = self._read(path, empty_ok=True)
        if raw is _NOT_READ:
            return
        for name, entry in raw.items():
            if not isinstance(entry, dict):
                self._issue(
                    path, str(name), "must be a mapping, e.g. {type: task_group, target: fast_group.echelon1}"
                )
                continue
            wrapper = self._validate(
                WrapperConfig, path, entry, kind="wrapper", name=str(name), prefix=(name,)
            )
            if wrapper is not None:
                self.wrappers[str(name)] = wrapper

    def _load_global_fallback(self) -> None:
        path = self.root / "global_fallback.yaml"
        if self.registry is not None:
            registry_file = self._show(self.root / "groups" / "_task_groups.yaml")
            for name, entry in self.registry.global_configs.items():
                if name == "global_fallback":
                    if not entry.enabled:
                        return
                    path = self.root / entry.file
                    if not path.is_file():
                        self._issue(
                            registry_file,
                            "global_configs.global_fallback.file",
                            f"file {entry.file!r} not found (paths are relative to {self._show(self.root)})",
                        )
                        return
                elif entry.enabled:
                    self._issue(
                        registry_file,
                        f"global_configs.{name}",
                        "llm-actors reads no global config but global_fallback; remove this entry "
                        "or set enabled: false",
                    )
        if path.is_file():
            self.global_fallback = self._validate(GlobalFallbackConfig, path, self._read(path), kind=None)

    def _load_state(self) -> None:
        path = self.root / "state.yaml"
        if not path.is_file():
            return
        raw = self._read(path)
        if raw is _NOT_READ:
            return
        sub = substitute(raw, self.environ)
        url = sub.data.get("url") if isinstance(sub.data, dict) else None
        if isinstance(url, str):
            for part in _url_secrets(url):
                self.secrets.add(part)
        state = self._validate(StateConfig, path, raw, kind=None)
        if state is not None:
            self.state = state


def _url_secrets(url: str) -> list[str]:
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    # Built from the parts, not str(exc): that quotes the offending line, which may hold a key.
    mark = exc.problem_mark or exc.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = exc.problem or "cannot be parsed"
    context = (
        f" ({exc.context} on line {exc.context_mark.line + 1})" if exc.context and exc.context_mark else ""
    )
    return f"invalid YAML{where}: {problem}{context}"
