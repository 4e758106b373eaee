"""Load experiment configurations: schema defaults per script, overridden by a YAML file and command-line opts.

There is no global configuration object: every call builds a fresh :class:`Config`, frozen once loaded.

* YAML files only override keys of the schema (:mod:`lib.config.defaults`); any other key is a :class:`ConfigError`
  naming the dotted key and the file.
* Leaves are type-checked against the schema default: ``int`` is accepted (and stored as ``float``) where a float is
  expected, anything else must match (``bool`` is not a number here; lists must stay lists and keep the element kind).
* ``opts`` is a flat ``[KEY, VALUE, ...]`` list of dotted keys and YAML-parsed values, e.g.
  ``["TRAIN.LR", "4e-4", "DATA.TRAIN.DATASETS_NAME", "[LASOT, COCO17]"]``.
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from lib.config.defaults import ConfigError, choice_errors
from lib.families import FAMILY_NAMES, get_family

__all__ = ["EXPERIMENTS_DIR", "Config", "ConfigError", "default_config", "resolve_config_path", "load_config"]

from ..utils.local_paths import EXPERIMENTS_DIR  # noqa: E402  (checkout or installed copy: find_experiments_dir)
_CLI = "the command line (--opts)"


class _YamlLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads exponent-only floats such as ``4e-4`` (YAML 1.1 requires a dot)."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class _FrozenList(list):
    """A list that refuses in-place modification (used for list values of a frozen :class:`Config`)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise ConfigError("config is frozen; use cfg.copy() or cfg.clone(opts) to derive a modified config")

    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple:
        return _FrozenList, (list(self),)


def _guarded(name: str) -> Callable[..., Any]:
    """The ``dict`` mutator ``name`` wrapped to refuse changes to a frozen :class:`Config`."""
    method = getattr(dict, name)

    def guarded(self: "Config", *args: Any, **kwargs: Any) -> Any:
        self._check_mutable()
        return method(self, *args, **kwargs)

    guarded.__name__ = name
    return guarded


class Config(dict):
    """Nested configuration with attribute access (``cfg.MODEL.BINS``) and item access (``cfg["MODEL"]["BINS"]``).

    Loaded configs are frozen: assignments raise :class:`ConfigError`. Derive modified configs with :meth:`copy`
    (mutable deep copy) or :meth:`clone` (frozen copy with command-line style overrides). The attributes ``script``,
    ``name`` (config name) and ``source`` (YAML path) record the origin; they are not part of :meth:`to_dict`.
    """

    __slots__ = ("_frozen", "script", "name", "source")

    def __init__(self, data: Mapping[str, Any] | None = None, *, script: str | None = None,
                 name: str | None = None, source: Path | None = None) -> None:
        super().__init__()
        object.__setattr__(self, "_frozen", False)
        object.__setattr__(self, "script", script)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "source", source)
        for key, value in (data or {}).items():
            self[key] = _plain_to_config(value)

    # --- access -------------------------------------------------------------------------------------------------
    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key in Config.__slots__:
            self._check_mutable()
            object.__setattr__(self, key, value)
        else:
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        self._check_mutable()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._check_mutable()
        super().__delitem__(key)

    def __delattr__(self, key: str) -> None:
        del self[key]

    update = _guarded("update")
    pop = _guarded("pop")
    popitem = _guarded("popitem")
    setdefault = _guarded("setdefault")
    clear = _guarded("clear")
    __ior__ = _guarded("__ior__")

    def _check_mutable(self) -> None:
        if getattr(self, "_frozen", False):
            raise ConfigError("config is frozen; use cfg.copy() or cfg.clone(opts) to derive a modified config")

    # --- freezing and derivation --------------------------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        """Whether assignments are refused."""
        return self._frozen

    def freeze(self) -> "Config":
        """Freeze this config and all nested sections and lists in place; returns ``self``."""
        for key, value in self.items():
            if isinstance(value, Config):
                value.freeze()
            elif isinstance(value, list) and not isinstance(value, _FrozenList):
                self[key] = _FrozenList(value)
        object.__setattr__(self, "_frozen", True)
        return self

    def copy(self) -> "Config":
        """Mutable deep copy with the same ``script``/``name``/``source``."""
        return Config(self.to_dict(), script=self.script, name=self.name, source=self.source)

    def clone(self, opts: Sequence[Any] | None = None) -> "Config":
        """Frozen deep copy with ``opts`` (``[KEY, VALUE, ...]``, as in :func:`load_config`) applied.

        Overrides are type-checked; a config loaded from a file (``source`` set) is re-validated. The schema returned
        by :func:`default_config` is not, since the official defaults are not a runnable configuration.
        """
        cfg = self.copy()
        _apply_opts(cfg, opts or [])
        if cfg.source is not None:
            _validate(cfg, f"{cfg.source} and {_CLI}" if opts else str(cfg.source))
        return cfg.freeze()

    def to_dict(self) -> dict[str, Any]:
        """Plain nested ``dict``/``list`` data (e.g. to store in a checkpoint or dump as YAML)."""
        return {key: value.to_dict() if isinstance(value, Config) else _plain_value(value)
                for key, value in self.items()}

    def __reduce__(self) -> tuple:
        return _rebuild, (self.to_dict(), self.script, self.name, self.source, self._frozen)

    def __repr__(self) -> str:
        return f"Config({dict.__repr__(self)})"


def _rebuild(data: dict[str, Any], script: str | None, name: str | None, source: Path | None,
             frozen: bool) -> Config:
    """Unpickling helper for :class:`Config`."""
    cfg = Config(data, script=script, name=name, source=source)
    return cfg.freeze() if frozen else cfg


def _plain_to_config(value: Any) -> Any:
    """Nested mappings become :class:`Config`, lists are copied."""
    if isinstance(value, Mapping):
        return Config(value)
    return _plain_value(value)


def _plain_value(value: Any) -> Any:
    """Deep copy of a leaf value with plain lists."""
    if isinstance(value, list):
        return [_plain_value(item) for item in value]
    return value


# --- public functions ---------------------------------------------------------------------------------------------
def default_config(script: str) -> Config:
    """The frozen schema defaults of ``script`` (spec §2.1 "default" column plus the project keys), unvalidated."""
    _check_script(script)
    return Config(get_family(script).config_schema(), script=script).freeze()


def resolve_config_path(script: str, config: str | os.PathLike[str]) -> Path:
    """Locate a config: a name under ``<repo>/experiments/<script>/`` (``.yaml`` optional) or a path to a YAML file.

    Raises :class:`FileNotFoundError` listing the available names when nothing matches.
    """
    _check_script(script)
    config_dir = EXPERIMENTS_DIR / script
    path = Path(config)
    candidates = []
    if len(path.parts) == 1:  # a bare name: look in the script's experiment folder first
        candidates += [config_dir / path.name, config_dir / f"{path.name}.yaml"]
    candidates.append(path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    available = sorted(p.stem for p in config_dir.glob("*.yaml"))
    raise FileNotFoundError(
        f"config {str(config)!r} not found for script {script!r}: not a file and not a name under {config_dir}; "
        f"available names: {', '.join(available) or '(none)'}")


def load_config(script: str, config: str | os.PathLike[str], opts: Sequence[Any] | None = None) -> Config:
    """Load ``config`` (see :func:`resolve_config_path`) over the defaults of ``script``, then apply ``opts``.

    Returns a fresh, validated, frozen :class:`Config` with ``script``, ``name`` and ``source`` recorded.
    Raises :class:`ConfigError` for unknown keys, wrong types and inconsistent values.
    """
    path = resolve_config_path(script, config)
    with path.open("r", encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_YamlLoader)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    cfg = Config(get_family(script).config_schema(), script=script, name=path.stem, source=path)
    _merge(cfg, data, str(path))
    _apply_opts(cfg, opts or [])
    _validate(cfg, f"{path} and {_CLI}" if opts else str(path))
    return cfg.freeze()


# --- merging and checking -----------------------------------------------------------------------------------------
def _check_script(script: str) -> None:
    if script not in FAMILY_NAMES:
        raise ConfigError(f"unknown script {script!r}; expected one of {', '.join(FAMILY_NAMES)}")


def _unknown_key(key: str, part: str, known: Iterable[str], origin: str) -> ConfigError:
    """Error for the dotted ``key`` whose component ``part`` is not among the ``known`` keys of its section."""
    close = difflib.get_close_matches(part, list(known), n=1)
    hint = f" (did you mean '{close[0]}' for '{part}'?)" if close else ""
    return ConfigError(f"unknown key '{key}' in {origin}{hint}")


def _merge(node: Config, updates: Mapping[str, Any], origin: str, prefix: str = "") -> None:
    """Recursively override ``node`` with ``updates``; every key must already exist in ``node``."""
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in node:
            raise _unknown_key(dotted, str(key), node.keys(), origin)
        node[key] = _checked(node[key], value, dotted, origin)


def _checked(current: Any, value: Any, key: str, origin: str) -> Any:
    """``value`` converted for storage at ``key`` whose present value is ``current``; raises on a type mismatch."""
    if isinstance(current, Config):
        if not isinstance(value, Mapping):
            raise ConfigError(f"wrong type for '{key}' in {origin}: expected a section (mapping), "
                              f"got {type(value).__name__} {value!r}")
        _merge(current, value, origin, prefix=f"{key}.")
        return current
    if isinstance(current, list):
        kind = _kind(current[0]) if current else None
        if not isinstance(value, list) or any(
                _kind(item) in ("list", "mapping") or (kind and _kind(item) != kind) for item in value):
            expected = f"a list of {kind}" if kind else "a list of scalars"
            raise ConfigError(f"wrong type for '{key}' in {origin}: expected {expected}, "
                              f"got {type(value).__name__} {value!r}")
        return list(value)
    if _kind(value) != _kind(current) or (type(current) is int and type(value) is float):
        expected = "float (or int)" if type(current) is float else type(current).__name__
        raise ConfigError(f"wrong type for '{key}' in {origin}: expected {expected}, "
                          f"got {type(value).__name__} {value!r}")
    return float(value) if type(current) is float else value


def _kind(value: Any) -> str:
    """Type family used by the checks: ``bool``, ``number`` (int/float), ``str``, ``list``, ``mapping`` or ``none``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, Mapping):
        return "mapping"
    return "none" if value is None else type(value).__name__


def _apply_opts(cfg: Config, opts: Sequence[Any]) -> None:
    """Apply ``[KEY, VALUE, ...]`` overrides with dotted keys; string values are parsed as YAML."""
    if len(opts) % 2:
        raise ConfigError(f"opts must be KEY VALUE pairs, got an odd number of items: {list(opts)!r}")
    for key, raw in zip(opts[::2], opts[1::2]):
        *parents, leaf = str(key).split(".")
        node = cfg
        for part in parents:
            if not isinstance(node.get(part), Config):
                raise _unknown_key(str(key), part, node.keys(), _CLI)
            node = node[part]
        if leaf not in node:
            raise _unknown_key(str(key), leaf, node.keys(), _CLI)
        value = yaml.load(raw, Loader=_YamlLoader) if isinstance(raw, str) else raw
        if isinstance(node[leaf], str) and isinstance(raw, str) and not isinstance(value, str):
            value = raw  # a string key keeps the text as typed (e.g. a file name such as "0001")
        node[leaf] = _checked(node[leaf], value, str(key), _CLI)


def _validate(cfg: Config, origin: str) -> None:
    """Cross-field constraints of a runnable configuration; ``origin`` names where the last values came from.

    The checks of the keys every schema shares are here; the family record adds those of its own keys.
    """
    model, data, test = cfg.MODEL, cfg.DATA, cfg.TEST
    errors = get_family(cfg.script).config_errors(cfg)
    stride = model.BACKBONE.STRIDE
    sizes = {"DATA.TEMPLATE.SIZE": data.TEMPLATE.SIZE, "DATA.SEARCH.SIZE": data.SEARCH.SIZE,
             "TEST.TEMPLATE_SIZE": test.TEMPLATE_SIZE, "TEST.SEARCH_SIZE": test.SEARCH_SIZE}
    if stride <= 0:
        errors.append(f"MODEL.BACKBONE.STRIDE must be positive, got {stride}")
    else:
        errors += [f"{key} ({size}) must be a positive multiple of MODEL.BACKBONE.STRIDE ({stride})"
                   for key, size in sizes.items() if size <= 0 or size % stride]
    # The position embeddings are sized from DATA.*.SIZE, so the tracker's crops must have the same size.
    for test_key, data_key in (("TEST.TEMPLATE_SIZE", "DATA.TEMPLATE.SIZE"), ("TEST.SEARCH_SIZE", "DATA.SEARCH.SIZE")):
        if sizes[test_key] != sizes[data_key]:
            errors.append(f"{test_key} ({sizes[test_key]}) must equal {data_key} ({sizes[data_key]})")
    for split in ("TRAIN", "VAL"):
        names, ratios = data[split].DATASETS_NAME, data[split].DATASETS_RATIO
        if len(names) != len(ratios):
            errors.append(f"DATA.{split}.DATASETS_NAME ({len(names)} entries) and DATA.{split}.DATASETS_RATIO "
                          f"({len(ratios)} entries) must have the same length")
    errors += choice_errors([("DATA.TEMPLATE.ORDER", data.TEMPLATE.ORDER, ("official", "chronological"))])
    if errors:
        raise ConfigError(f"invalid configuration (values from {origin}):\n  " + "\n  ".join(errors))
