"""The config reference, generated from the config models: JSON Schemas for editors and a Markdown page.

Three files, all from :class:`PlatformConfig` and the cross-key rules (rampart.config.rules), so
they cannot drift from what `rampart plan` and the program accept (a test compares them with a fresh
generation; `rampart config-schema` rewrites them):

- ``<stackConfigDir>/schemas/stack.schema.json``: a stack file, ``Pulumi.<stack>.yaml``;
- ``<stackConfigDir>/schemas/service.schema.json``: a catalog declaration, ``services/<name>.yaml``;
- ``docs/configuration.md``: every key with its type, default, description and rules.

Each stack and service file names its schema on its first line (``# yaml-language-server:
$schema=...``), which the YAML language server (VS Code, JetBrains, Neovim) reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from components.core.protection import is_protected
from rampart.config.catalog import CATALOG_DIR, OVERRIDES_KEY
from rampart.config.load import NAMESPACE  # importing it registers the cross-key rules
from rampart.config.models import Environment, PlatformConfig
from rampart.config.rules import RULES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
GENERATED = "Generated from rampart/config/models.py by `rampart config-schema`; see docs/configuration.md."
SCHEMA_DIR = "schemas"
STACK_SCHEMA = "stack.schema.json"
SERVICE_SCHEMA = "service.schema.json"
DOCS_PAGE = Path("docs") / "configuration.md"
MODELINE = "# yaml-language-server: $schema="
OVERRIDE_SUFFIX = "Override"
# Keys of another namespace (a provider's, e.g. aws:region) are the provider's business.
OTHER_NAMESPACE = rf"^(?!{NAMESPACE}:)[A-Za-z0-9_.-]+:.+$"
SECURE = {
    "type": "object",
    "description": "A secret: set it from stdin (`pulumi config set --secret <key> < file`), "
    "never in plain text.",
    "properties": {
        "secure": {"type": "string", "description": "Ciphertext written by `pulumi config set --secret`."}
    },
    "required": ["secure"],
    "additionalProperties": False,
}
SECRETS_PROVIDER = {
    "type": "string",
    "description": "How the stack's secrets are encrypted: passphrase (local), default (Pulumi Cloud), "
    "or a KMS URL such as awskms://alias/rampart-dev?region=eu-west-1 (the aws stacks).",
    "pattern": r"^(passphrase|default|service|(awskms|azurekeyvault|gcpkms|hashivault)://.+)$",
}


# --- JSON Schema ---------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """Pydantic's schema without its generated field titles, descriptions on one line."""
    if isinstance(value, dict):
        cleaned = {key: _clean(item) for key, item in value.items()}
        if isinstance(cleaned.get("description"), str):
            cleaned["description"] = " ".join(cleaned["description"].split())
        return cleaned
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


_TYPE_TITLES = {
    "DNS label",
    "host name",
    "HTTP path",
    "pinned image",
    "CPU quantity",
    "memory quantity",
    "CIDR block",
}


def _models() -> dict[str, Any]:
    schema = _clean(PlatformConfig.model_json_schema())
    for model in [schema, *schema["$defs"].values()]:
        for prop in model.get("properties", {}).values():
            if str(prop.get("title", "")) not in _TYPE_TITLES:
                prop.pop("title", None)
    return dict(schema)


def _override(prop: Mapping[str, Any]) -> dict[str, Any]:
    """A property as an override may give it: a mapping merges (its keys optional), the rest replaces."""
    if "$ref" in prop:
        return {**prop, "$ref": prop["$ref"] + OVERRIDE_SUFFIX}
    if "anyOf" in prop:
        return {**prop, "anyOf": [_override(option) for option in prop["anyOf"]]}
    return dict(prop)


def _override_defs(defs: Mapping[str, Any]) -> dict[str, Any]:
    """``<Model>Override`` for every model: every key optional, nested mappings overrides too."""
    result: dict[str, Any] = {}
    for name, model in defs.items():
        properties = {key: _override(prop) for key, prop in model.get("properties", {}).items()}
        if name == "ServiceSpec":
            properties.pop("name", None)
            routes = properties["routes"]
            properties["routes"] = {
                "description": f"{routes.get('description', '')} A list replaces the declaration's routes; a "
                "mapping from a route's path to the keys that change patches that route.".strip(),
                "anyOf": [
                    {k: v for k, v in routes.items() if k not in ("description", "default")},
                    {"type": "object", "additionalProperties": {"$ref": f"#/$defs/Route{OVERRIDE_SUFFIX}"}},
                ],
            }
        override = {k: v for k, v in model.items() if k not in ("required", "properties", "title")}
        result[name + OVERRIDE_SUFFIX] = {**override, "properties": properties, "additionalProperties": False}
    return result


def _stack_key(key: str, prop: dict[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """A ``rampart:`` key as a stack file gives it: services by name, the token as a secret."""
    if key == "services":
        return {
            "description": f"The services this stack runs, in order: names of files in {CATALOG_DIR}/.",
            "type": "array",
            "items": defs["ServiceSpec"]["properties"]["name"],
            "minItems": 1,
            "uniqueItems": True,
        }
    if key == "vault_token":
        return {**SECURE, "description": f"{prop.get('description', '')} {SECURE['description']}".strip()}
    return prop


def stack_schema() -> dict[str, Any]:
    """The JSON Schema of a stack file, Pulumi.<stack>.yaml."""
    models = _models()
    defs = dict(models["$defs"])
    config = {f"{NAMESPACE}:{key}": _stack_key(key, prop, defs) for key, prop in models["properties"].items()}
    config[f"{NAMESPACE}:{OVERRIDES_KEY}"] = {
        "description": "Per service of this stack, only what differs here from its declaration: a mapping "
        "merges key by key, a list or a value replaces it (null removes it).",
        "type": "object",
        "propertyNames": defs["ServiceSpec"]["properties"]["name"],
        "additionalProperties": {"$ref": f"#/$defs/ServiceSpec{OVERRIDE_SUFFIX}"},
    }
    return {
        "$schema": DIALECT,
        "title": "Rampart stack file (Pulumi.<stack>.yaml)",
        "description": GENERATED,
        "type": "object",
        "properties": {
            "secretsprovider": SECRETS_PROVIDER,
            "encryptionsalt": {
                "type": "string",
                "description": "The passphrase provider's salt (Pulumi writes it).",
            },
            "encryptedkey": {
                "type": "string",
                "description": "A KMS provider's data key (Pulumi writes it).",
            },
            "environment": {
                "description": "Pulumi ESC environments the stack imports.",
                "type": "array",
                "items": {"type": "string"},
            },
            "config": {
                "type": "object",
                "properties": config,
                "required": [f"{NAMESPACE}:{key}" for key in models.get("required", [])],
                "patternProperties": {OTHER_NAMESPACE: {}},
                "additionalProperties": False,
            },
        },
        "required": ["config"],
        "additionalProperties": False,
        "$defs": defs | _override_defs(defs),
    }


def service_schema() -> dict[str, Any]:
    """The JSON Schema of a catalog declaration, services/<name>.yaml (the name is the file's)."""
    models = _models()
    defs = dict(models["$defs"])
    service = dict(defs.pop("ServiceSpec"))
    properties = {key: prop for key, prop in service["properties"].items() if key != "name"}
    return {
        "$schema": DIALECT,
        "title": "Rampart service declaration (services/<name>.yaml)",
        "description": f"{service.get('description', '')} The file name is its name. Generated by "
        "`rampart config-schema`; see docs/configuration.md.".strip(),
        "type": "object",
        "properties": properties,
        "required": [key for key in service.get("required", []) if key != "name"],
        "additionalProperties": False,
        "$defs": defs,
    }


def _json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- the Markdown reference ----------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    model: str
    # Where it appears, as key paths (``services[].resources.requests``).
    paths: tuple[str, ...]


def _sections(defs: Mapping[str, Any], root: Mapping[str, Any], prefix: str) -> list[Section]:
    """Every model reachable from ``root``, in the order a reader meets them, with the paths it sits at."""
    found: dict[str, list[str]] = {}

    def walk(model: Mapping[str, Any], at: str) -> None:
        for key, prop in model.get("properties", {}).items():
            path = f"{at}.{key}" if at else key
            for ref, suffix in _refs(prop):
                name = ref.rsplit("/", 1)[-1]
                first = name not in found
                found.setdefault(name, []).append(path + suffix)
                if first:
                    walk(defs[name], path + suffix)

    walk(root, prefix)
    return [Section(name, tuple(paths)) for name, paths in found.items()]


def _refs(prop: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if "$ref" in prop:
        yield prop["$ref"], ""
    for option in prop.get("anyOf", []):
        yield from _refs(option)
    if isinstance(prop.get("items"), dict):
        yield from ((ref, f"[]{suffix}") for ref, suffix in _refs(prop["items"]))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def type_text(prop: Mapping[str, Any]) -> str:
    """A property's type in words: ``integer 1-65535``, ``list of DNS label``, ``mapping (Replicas)``."""
    if "$ref" in prop:
        name = str(prop["$ref"]).rsplit("/", 1)[-1]
        return f"mapping ([{name}](#{name.lower()}))"
    if "anyOf" in prop:
        options = [option for option in prop["anyOf"] if option.get("type") != "null"]
        text = " or ".join(type_text(option) for option in options)
        return f"{text}, optional" if len(options) < len(prop["anyOf"]) else text
    if "enum" in prop:
        return " | ".join(f"`{json.dumps(value)}`" for value in prop["enum"])
    return _scalar_or_collection(prop)


def _scalar_or_collection(prop: Mapping[str, Any]) -> str:
    kind = prop.get("type")
    if prop.get("format") == "password":
        text = "secret string"
    elif kind == "array":
        text = f"list of {type_text(prop.get('items', {}))}"
    elif kind == "object":
        values = prop.get("additionalProperties")
        text = f"mapping of string to {type_text(values)}" if isinstance(values, dict) else "mapping"
    elif kind in ("integer", "number"):
        text = f"{kind}{_bounds(prop)}"
    else:
        text = str(prop.get("title") or kind or "any")
    return text


def _bounds(prop: Mapping[str, Any]) -> str:
    low, high = prop.get("minimum", prop.get("exclusiveMinimum")), prop.get("maximum")
    if low is not None and high is not None:
        return f" {low} to {high}"
    if low is not None:
        return f" ≥ {low}"
    return f" ≤ {high}" if high is not None else ""


def _default(prop: Mapping[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in prop:
        return ""
    value = prop["default"]
    if isinstance(value, dict) and value and "$ref" in prop:
        return "see below"
    if value is None:
        return "none"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _rules_by_key() -> dict[str, list[str]]:
    rules: dict[str, list[str]] = {}
    for entry in RULES:
        for key in entry.keys:
            rules.setdefault(key, []).append(f"{entry.when}: {entry.text}")
    return rules


def _model_table(
    model: Mapping[str, Any], paths: tuple[str, ...], rules: Mapping[str, list[str]], *, key_prefix: str = ""
) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    required = set(model.get("required", []))
    for key, prop in model.get("properties", {}).items():
        notes = [text for path in paths for text in rules.get(f"{path}.{key}" if path else key, [])]
        description = " ".join([str(prop.get("description", "")), *(f"**Rule** ({note})." for note in notes)])
        lines.append(
            f"| `{key_prefix}{key}` | {_cell(type_text(prop))} | {_cell(_default(prop, key in required))} "
            f"| {_cell(description.strip())} |"
        )
    return lines


def _validators(model_name: str) -> list[str]:
    """The checks a model makes across its own keys, from its validators' docstrings."""
    models = {cls.__name__: cls for cls in _model_classes()}
    cls = models.get(model_name)
    if cls is None:
        return []
    decorators = cls.__pydantic_decorators__.model_validators.values()
    return [" ".join((d.func.__doc__ or "").split()) for d in decorators if d.func.__doc__]


def _model_classes() -> Iterator[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    pending: list[type[BaseModel]] = [PlatformConfig]
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        for info in cls.model_fields.values():
            pending.extend(_nested_models(info.annotation))


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in getattr(annotation, "__args__", ()):
        yield from _nested_models(argument)


def _section_lines(
    defs: Mapping[str, Any], section: Section, rules: Mapping[str, list[str]], shown: str
) -> list[str]:
    model = defs[section.model]
    lines = [f"### {section.model}", "", f"At {shown}. {model.get('description', '')}".strip(), ""]
    lines += _model_table(model, section.paths, rules)
    checks = _validators(section.model)
    if checks:
        lines += ["", *(f"- Checked: {check}" for check in checks)]
    return [*lines, ""]


def _shown_paths(section: Section, strip: str = "") -> str:
    return ", ".join(f"`{path.removeprefix(strip)}`" for path in section.paths)


def _environment_table() -> list[str]:
    environments: tuple[Environment, ...] = ("local", "dev", "staging", "prod")
    lines = [
        "| environment | stateful resources protected and retained | rules that apply there |",
        "|---|---|---|",
    ]
    for environment in environments:
        applying = [
            f"`{', '.join(entry.keys)}`: {entry.text}"
            for entry in RULES
            if re.search(rf"\b{environment}\b", entry.when) and entry.when.startswith("environment")
        ]
        lines.append(
            f"| {environment} | {'yes' if is_protected(environment) else 'no'} | "
            f"{_cell('; '.join(applying) or '-')} |"
        )
    return lines


INTRO = f"""# Configuration reference

<!-- Generated from rampart/config/models.py and the rules in rampart/config/load.py by
     `rampart config-schema`; `make test` fails when this page is out of date. Do not edit. -->

Two kinds of file configure Rampart. `rampart plan` checks both (every problem at once, with its
file and key path) and so does your editor as you type: each file names its JSON Schema on its
first line (`{MODELINE}...`, read by the YAML language server), generated from the same
models into `stacks/{SCHEMA_DIR}/`.

- `stacks/Pulumi.<stack>.yaml`: a stack. Its keys are `{NAMESPACE}:<key>` under `config:`; keys of
  other namespaces (`aws:region`, ...) belong to their providers.
- `stacks/{CATALOG_DIR}/<name>.yaml`: a service, declared once; the file name is its name.

## Stack file

| key | type | default | description |
|---|---|---|---|
| `secretsprovider` | string | `passphrase` | {_cell(str(SECRETS_PROVIDER["description"]))} |
"""
OVERRIDES = f"""## Overrides

`{NAMESPACE}:{OVERRIDES_KEY}.<service>` takes any key of the declaration but `name`, every key
optional: a mapping merges into the declaration key by key, a list or a value replaces it, `null`
removes an optional one (`database: null`), and `routes` also takes a mapping from a route's path to
the keys that change (`routes: {{/orders: {{host: api.dev.example.com}}}}`).
"""


def _stack_rows(models: Mapping[str, Any], rules: Mapping[str, list[str]]) -> list[str]:
    required = set(models.get("required", []))
    rows = []
    for key, prop in models["properties"].items():
        if key == "services":
            text = "list of service names (DNS labels)"
            description = f"The services this stack runs, in order: `stacks/{CATALOG_DIR}/<name>.yaml` each."
        elif key == "vault_token":
            text = "secret (`secure:`)"
            description = f"{prop.get('description', '')} {SECURE['description']}"
        else:
            text, description = type_text(prop), str(prop.get("description", ""))
        notes = " ".join(f"**Rule** ({note})." for note in rules.get(key, []))
        rows.append(
            f"| `{NAMESPACE}:{key}` | {_cell(text)} | {_cell(_default(prop, key in required))} | "
            f"{_cell(f'{description} {notes}'.strip())} |"
        )
    rows.append(
        f"| `{NAMESPACE}:{OVERRIDES_KEY}` | mapping of service name to [overrides](#overrides) | none | "
        "Per service, only what differs in this stack. |"
    )
    return rows


def _service_part(defs: Mapping[str, Any], rules: Mapping[str, list[str]]) -> list[str]:
    spec = defs["ServiceSpec"]
    declared = {**spec, "properties": {k: v for k, v in spec["properties"].items() if k != "name"}}
    lines = [
        "## Service declaration",
        "",
        f"`stacks/{CATALOG_DIR}/<name>.yaml`. Key paths below are within the file; errors about a stack",
        "name the service by position and name: `services[7] (shipping).replicaz`.",
        "",
        *_model_table(declared, ("services[]",), rules),
        "",
    ]
    for section in _sections(defs, spec, "services[]"):
        lines += _section_lines(defs, section, rules, _shown_paths(section, "services[]."))
    return lines


def _rules_part() -> list[str]:
    rows = [
        f"| {_cell(', '.join(f'`{k}`' for k in entry.keys))} | {_cell(entry.when)} | {_cell(entry.text)} |"
        for entry in RULES
    ]
    return [
        "## Rules across keys",
        "",
        "Each key is valid alone; these are checked together (rampart/config/load.py):",
        "",
        "| keys | when | requires |",
        "|---|---|---|",
        *rows,
        "",
    ]


def configuration_page() -> str:
    """docs/configuration.md: every key of a stack file and of a service declaration."""
    models = _models()
    defs = models["$defs"]
    rules = _rules_by_key()
    settings = {"properties": {k: v for k, v in models["properties"].items() if k != "services"}}
    lines = [*INTRO.splitlines(), *_stack_rows(models, rules), "", "## Settings", ""]
    for section in _sections(defs, settings, ""):
        lines += _section_lines(defs, section, rules, _shown_paths(section))
    lines += _service_part(defs, rules)
    lines += [*OVERRIDES.splitlines(), "", *_rules_part()]
    lines += ["## Per environment", "", *_environment_table(), ""]
    return "\n".join(lines)


def generated_files(root: Path, config_dir: Path | None = None) -> dict[Path, str]:
    """Each generated file's path under the project ``root`` and its text."""
    schemas = (config_dir or root / "stacks") / SCHEMA_DIR
    return {
        schemas / STACK_SCHEMA: _json(stack_schema()),
        schemas / SERVICE_SCHEMA: _json(service_schema()),
        root / DOCS_PAGE: configuration_page(),
    }


def modeline(schema: Path, file: Path) -> str:
    """The first line that points an editor at ``schema`` from ``file`` (a relative path)."""
    relative = Path(*[".."] * (len(file.parent.parts) - len(_common(file.parent, schema.parent).parts)))
    target = relative / schema.relative_to(_common(file.parent, schema.parent))
    return f"{MODELINE}{target.as_posix()}"


def _common(a: Path, b: Path) -> Path:
    parts = []
    for x, y in zip(a.parts, b.parts, strict=False):
        if x != y:
            break
        parts.append(x)
    return Path(*parts)
