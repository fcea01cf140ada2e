"""The service catalog: each service declared once, in ``<stackConfigDir>/services/<name>.yaml``;
each stack names the services it runs and overrides only what differs in its environment.

    # stacks/Pulumi.dev.yaml
    rampart:services: [orders, payments]          # the catalog services this stack runs, in order
    rampart:service_overrides:
      orders:
        replicas: {min: 1, max: 3}                # a mapping merges into the catalog's, key by key
        egress: [api.stripe.com]                  # anything else (a list, a scalar, null) replaces
        routes:
          /orders: {host: api.dev.example.com}    # routes only: patch one route, found by its path

The merge runs on the raw values, before validation, and remembers where each value came from,
so every problem names the file and the key path the user has to edit.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rampart.config.load import NAMESPACE, ConfigError, load_platform_config, suggest
from rampart.config.models import PlatformConfig, Route
from rampart.config.types import is_dns_label

CATALOG_DIR = "services"
OVERRIDES_KEY = "service_overrides"

Loc = tuple[int | str, ...]


@dataclass(frozen=True)
class ItemKey:
    """How an override finds one item of a list of mappings."""

    noun: str
    key: str
    # The model's default for the key, for items that leave it out.
    default: object


# Lists are replaced whole, as Helm replaces lists in values files; except these lists of
# mappings, whose items an override patches one at a time: a route's host differs per
# environment, while its auth, limits and allowlist must not be copied into every stack.
KEYED_LISTS: dict[Loc, ItemKey] = {("routes",): ItemKey("route", "path", Route.model_fields["path"].default)}

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(loc: Sequence[int | str]) -> str:
    """``routes["/orders"].host``: Pulumi's ``--path`` syntax, keys that are not plain names quoted."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f'["{part}"]'
    return path


@dataclass(frozen=True)
class StackFiles:
    """Where a stack's configuration lives. Messages show paths relative to ``root``."""

    # The project root: the directory holding Pulumi.yaml.
    root: Path
    # Pulumi.yaml's stackConfigDir: the stack files, and the catalog beside them.
    config_dir: Path
    stack: str

    @property
    def stack_file(self) -> Path:
        return self.config_dir / f"Pulumi.{self.stack}.yaml"

    @property
    def catalog_dir(self) -> Path:
        return self.config_dir / CATALOG_DIR

    def catalog_file(self, name: str) -> Path:
        return self.catalog_dir / f"{name}.yaml"

    def catalog_names(self) -> list[str]:
        return sorted(path.stem for path in self.catalog_dir.glob("*.yaml"))

    def shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


@dataclass
class ServiceOrigin:
    """Where one merged service came from: its catalog file, and what the stack's override changed."""

    catalog_file: str
    stack_file: str
    # Its position in the stack's rampart:services.
    selected_at: int
    # Key path in the service -> the stack-file key path whose value replaced it whole.
    replaced: dict[Loc, Loc] = field(default_factory=dict)
    # Key path in the service -> the stack-file key path of a mapping merged into it.
    merged: dict[Loc, Loc] = field(default_factory=dict)

    def locate(self, loc: Loc) -> str:
        if loc[:1] == ("name",):
            # The name is the catalog file's, and the stack names it in rampart:services.
            return f"{self.stack_file}: {NAMESPACE}:services[{self.selected_at}]"
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in self.replaced:
                return self._in_stack((*self.replaced[loc[:cut]], *loc[cut:]))
        if loc in self.merged:
            # Both files made this value (e.g. replicas: min from the catalog, max from the stack).
            return f"{self._in_stack(self.merged[loc])} (merged over {self.catalog_file})"
        return f"{self.catalog_file}: {key_path(loc) or '(the whole file)'}"

    def _in_stack(self, loc: Loc) -> str:
        return f"{self.stack_file}: {NAMESPACE}:{key_path(loc)}"


@dataclass
class Resolution:
    """The stack's raw config with ``services`` merged from the catalog, ready for validation."""

    raw: dict[str, Any]
    # One per merged service, in the same order.
    origins: list[ServiceOrigin]
    stack_file: str
    # Problems found while merging (unknown names, unreadable files); validation adds the rest.
    problems: list[str]

    def locate(self, loc: Sequence[int | str]) -> str:
        where = tuple(loc)
        index = where[1] if len(where) >= 2 and where[0] == "services" else None
        if isinstance(index, int) and index < len(self.origins):
            return self.origins[index].locate(where[2:])
        return f"{self.stack_file}: {NAMESPACE}:{key_path(where)}"


def load_stack(
    raw: Mapping[str, Any], files: StackFiles, secret_keys: Collection[str] | None = None
) -> PlatformConfig:
    """The stack's validated config: its ``rampart:`` keys (namespace stripped) with the catalog
    merged in. The Pulumi program, `rampart plan` (which runs that program) and the tests all read
    a stack through this one function. ``secret_keys`` (``rampart:<key>``, as the engine marks
    them) are checked to hold every secret setting. Raises ConfigError: every problem, one line each."""
    resolution = resolve(raw, files)
    problems = [*resolution.problems, *plaintext_secrets(raw, files, secret_keys)]
    if not raw.get("teams"):
        # Every service names the team that owns it (a rule in rampart.config.team_rules, once teams exist).
        problems.append(
            f"{resolution.stack_file}: {NAMESPACE}:teams: required: the teams that own the services "
            "(name, group, and aws_role_arns on aws)"
        )
    try:
        config = load_platform_config(resolution.raw, locate=resolution.locate, root=files.root)
    except ConfigError as exc:
        raise ConfigError([*problems, *exc.problems]) from None
    if problems:
        raise ConfigError(problems)
    return config


# Settings that are secrets (pydantic SecretStr): never in plain text in a stack file.
SECRET_SETTINGS = tuple(
    name for name, info in PlatformConfig.model_fields.items() if "SecretStr" in str(info.annotation)
)


def plaintext_secrets(
    raw: Mapping[str, Any], files: StackFiles, secret_keys: Collection[str] | None
) -> list[str]:
    """Secret settings given in plain text: the stack file would hold (and git would keep) the secret.

    Two views, either one is enough to refuse: the stack file itself, where a secret is a ``secure:``
    mapping (`pulumi config set --secret` writes ``{secure: <ciphertext>}``) and anything else is plain
    text; and the engine's secret keys (``secret_keys``: PULUMI_CONFIG_SECRET_KEYS under the CLI, the
    stack file's ``secure:`` keys offline), which also catch a value injected through PULUMI_CONFIG. Every
    environment, not only prod: a token in git is leaked wherever it was meant to be used."""
    written = _stack_file_config(files)
    problems = []
    for name in SECRET_SETTINGS:
        key = f"{NAMESPACE}:{name}"
        in_file = written.get(key, written.get(name))
        plain_in_file = in_file is not None and not _is_secure(in_file)
        plain_in_engine = secret_keys is not None and raw.get(name) is not None and key not in secret_keys
        if plain_in_file or plain_in_engine:
            problems.append(
                f"{files.shown(files.stack_file)}: {key}: a secret in plain text; remove it and set it "
                f"from stdin (`pulumi config set --secret {key} < file`)"
            )
    return problems


def _is_secure(value: object) -> bool:
    """``{secure: <ciphertext>}``, the only form a secret takes in a stack file."""
    return isinstance(value, Mapping) and set(value) == {"secure"} and isinstance(value["secure"], str)


def _stack_file_config(files: StackFiles) -> Mapping[str, Any]:
    """The stack file's ``config:`` as written (nothing decrypted); empty when there is no file to read
    (a program given its config some other way: the engine's secret keys are the check then)."""
    try:
        document = yaml.safe_load(files.stack_file.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    config = document.get("config") if isinstance(document, Mapping) else None
    return config if isinstance(config, Mapping) else {}


def resolve(raw: Mapping[str, Any], files: StackFiles) -> Resolution:
    """Replace the stack's list of service names with the catalog declarations, overrides merged."""
    values = dict(raw)
    merger = _Merger(files)
    overrides = values.pop(OVERRIDES_KEY, None)
    selection = values.get("services")
    origins: list[ServiceOrigin] = []
    # Anything but a list (or no key at all) is left to the model, which reports it at rampart:services.
    if isinstance(selection, list):
        chosen = merger.selected(selection)
        patches = merger.overrides(overrides, chosen)
        services = []
        for name, position in chosen.items():
            declaration = merger.declaration(name)
            if declaration is None:
                continue
            origin = ServiceOrigin(files.shown(files.catalog_file(name)), merger.stack_file, position)
            patch = patches.get(name)
            at: Loc = (OVERRIDES_KEY, name)
            services.append(
                declaration if patch is None else merger.merge(declaration, patch, (), at, origin)
            )
            origins.append(origin)
        values["services"] = services
    return Resolution(values, origins, merger.stack_file, merger.problems)


class _Merger:
    """Reads the catalog files a stack names and merges the stack's overrides into them,
    collecting every problem on the way."""

    def __init__(self, files: StackFiles) -> None:
        self.files = files
        self.stack_file = files.shown(files.stack_file)
        self.problems: list[str] = []

    def in_stack(self, loc: Loc, message: str) -> None:
        self.problems.append(f"{self.stack_file}: {NAMESPACE}:{key_path(loc)}: {message}")

    def selected(self, selection: list[Any]) -> dict[str, int]:
        """Service name -> its position in rampart:services, for each entry naming a catalog file."""
        known = self.files.catalog_names()
        catalog = self.files.shown(self.files.catalog_dir)
        chosen: dict[str, int] = {}
        for i, entry in enumerate(selection):
            at: Loc = ("services", i)
            if isinstance(entry, Mapping):
                name = entry.get("name", "<name>")
                self.in_stack(
                    at, f"a stack only names its services; declare this one in {catalog}/{name}.yaml"
                )
            elif not isinstance(entry, str) or not is_dns_label(entry):
                # Checked before the name becomes a file path.
                self.in_stack(at, f"{entry!r} is not a service name (a DNS label: {catalog}/<name>.yaml)")
            elif entry in chosen:
                self.in_stack(
                    at, f"{entry!r} is listed twice (first at {NAMESPACE}:services[{chosen[entry]}])"
                )
            elif entry not in known:
                missing = self.files.shown(self.files.catalog_file(entry))
                self.in_stack(at, f"unknown service {entry!r}: no {missing}{suggest(entry, known)}")
            else:
                chosen[entry] = i
        return chosen

    def overrides(self, value: object, chosen: Mapping[str, int]) -> dict[str, Mapping[str, Any]]:
        """The stack's overrides by service name, each checked to name one of its services."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.in_stack((OVERRIDES_KEY,), "expected a mapping: service name -> the keys that differ here")
            return {}
        patches: dict[str, Mapping[str, Any]] = {}
        for name, patch in value.items():
            at: Loc = (OVERRIDES_KEY, str(name))
            if name not in chosen:
                self._unknown_override(at, str(name), chosen)
            elif not isinstance(patch, Mapping):
                self.in_stack(at, "expected a mapping of the keys that differ in this stack")
            else:
                if "name" in patch:
                    self.in_stack((*at, "name"), "the name is the catalog file's and cannot be overridden")
                patches[name] = {key: item for key, item in patch.items() if key != "name"}
        return patches

    def _unknown_override(self, at: Loc, name: str, chosen: Mapping[str, int]) -> None:
        if name in self.files.catalog_names():
            self.in_stack(
                at, f"{name!r} is not one of this stack's services (list it in {NAMESPACE}:services)"
            )
        else:
            self.in_stack(at, f"unknown service {name!r}{suggest(name, chosen)}")

    def declaration(self, name: str) -> dict[str, Any] | None:
        """The service as its catalog file declares it, its name taken from the file name."""
        path = self.files.catalog_file(name)
        shown = self.files.shown(path)
        try:
            document = yaml.safe_load(path.read_text())
        except OSError as exc:
            self.problems.append(f"{shown}: cannot be read ({exc.strerror})")
            return None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            self.problems.append(f"{shown}: not valid YAML{where}")
            return None
        if not isinstance(document, dict):
            self.problems.append(f"{shown}: expected a mapping of the service's keys (image, port, ...)")
            return None
        if "name" in document:
            # One source for the name: a second one could disagree with the file name.
            self.problems.append(f"{shown}: name: the file name is the service's name; remove this key")
        return {"name": name, **{key: value for key, value in document.items() if key != "name"}}

    def merge(self, base: Any, patch: Any, loc: Loc, source: Loc, origin: ServiceOrigin) -> Any:
        """``patch`` over ``base``: mappings merge key by key, keyed lists item by item, anything
        else replaces. Records in ``origin`` which stack-file key made each part."""
        if isinstance(base, Mapping) and isinstance(patch, Mapping):
            origin.merged[loc] = source
            merged = dict(base)
            for key, value in patch.items():
                merged[key] = self.merge(base.get(key), value, (*loc, key), (*source, key), origin)
            return merged
        item_key = KEYED_LISTS.get(loc)
        if item_key is not None and isinstance(base, list) and isinstance(patch, Mapping):
            origin.merged[loc] = source
            return self._patch_items(base, patch, item_key, loc=loc, source=source, origin=origin)
        origin.replaced[loc] = source
        return patch

    def _patch_items(
        self,
        base: list[Any],
        patches: Mapping[Any, Any],
        item_key: ItemKey,
        *,
        loc: Loc,
        source: Loc,
        origin: ServiceOrigin,
    ) -> list[Any]:
        """Patch the items ``patches`` names by their key (a route by its path); order is kept."""
        items = list(base)
        keys = [
            item.get(item_key.key, item_key.default) if isinstance(item, Mapping) else None for item in items
        ]
        for wanted, patch in patches.items():
            at: Loc = (*source, str(wanted))
            matches = [i for i, key in enumerate(keys) if key == wanted]
            if len(matches) == 1:
                items[matches[0]] = self.merge(items[matches[0]], patch, (*loc, matches[0]), at, origin)
            elif matches:
                self.in_stack(
                    at, f"{len(matches)} {item_key.noun}s have {item_key.key} {wanted!r}; override the list"
                )
            else:
                hint = suggest(str(wanted), [str(key) for key in keys if key is not None])
                self.in_stack(
                    at, f"no {item_key.noun} with {item_key.key} {wanted!r} in {origin.catalog_file}{hint}"
                )
        return items
