"""Config validation: the JSON schema first, then the checks a schema cannot express.

The workflow calls ``check_config`` when it starts, so a bad config stops the run before
any job with one line that names the key::

    config error: partitions.dir.alpha: -1 is less than or equal to the minimum of 0

Defaults declared in the schema are filled in, so every rule sees complete settings and
the effective config saved beside results is the one that ran.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from dfnas.errors import ConfigError

# shipped inside the package (workflow/schemas/config.schema.yaml links to it), so
# `dfnas check-config` works from any install, not only from a clone
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the
    last one silently: a second ``training:`` block would replace the first)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges, may repeat
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"{key}: given twice in one mapping (line {key_node.start_mark.line + 1} of "
                    f"{Path(key_node.start_mark.name).name}); YAML would keep only the last"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def check_yaml_keys(path: str | Path) -> None:
    """Refuse a config file that gives a key twice in one mapping (Snakemake reads config
    files itself, so the workflow checks each file it was given with this)."""
    with open(path) as fh:
        yaml.load(fh, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def validate_schema(config: dict, schema: dict) -> dict:
    """Return a copy of ``config`` with schema defaults filled; raise ``ConfigError``."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        raise ConfigError(_describe(errors[0]))
    filled = copy.deepcopy(config)
    _fill_defaults(filled, schema, schema)
    return filled


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        prefix = "" if where == "(top level)" else f"{where}."
        return f"{prefix}{extra[0]}: unknown key{hint}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{where}: {error.instance!r} is not one of: {allowed}"
    return f"{where}: {error.message}"


def _resolve(node: dict, root: dict) -> dict:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = root
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return target


_MISSING = object()


def _fill_defaults(instance: Any, node: dict, root: dict) -> None:
    node = _resolve(node, root)
    if not isinstance(instance, dict):
        return
    props = node.get("properties", {})
    for key, sub in props.items():
        # a default may sit beside a $ref ({$ref: ..., default: {}}) or in its target
        default = sub.get("default", _resolve(sub, root).get("default", _MISSING))
        sub = _resolve(sub, root)
        if key not in instance and default is not _MISSING:
            instance[key] = copy.deepcopy(default)
        if key in instance:
            _fill_defaults(instance[key], sub, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in props:
                _fill_defaults(value, extra, root)


def expand_device_runs(config: dict) -> dict:
    """Turn a run that lists ``devices`` into one run per device type, named
    ``<run>-<device>``, whose options carry that device's budget, and whose ``space``
    names the run it came from: the search space whose latency table the workflow measures
    once for all its device types (when the method declares it reads one)."""
    from dfnas.methods import METHODS  # heavy imports only once the schema passed

    devices = config.get("devices", {})
    runs = {}
    for name, run in config.get("runs", {}).items():
        if "devices" not in run:
            runs[name] = run
            continue
        for device in run["devices"]:
            if device not in devices:
                known = ", ".join(sorted(devices)) or "none defined"
                raise ConfigError(f"runs.{name}.devices: unknown device type '{device}' ({known})")
            try:
                method = METHODS.get(run["method"])
            except ConfigError as exc:
                raise ConfigError(f"runs.{name}.method: {exc}") from None
            try:
                budget = method.device_options(device, devices[device])
            except ConfigError as exc:
                raise ConfigError(f"runs.{name}.devices: {exc}") from None
            options = dict(run.get("options", {})) | budget
            expanded = {k: v for k, v in run.items() if k != "devices"}
            _add_generated(runs, config, f"runs.{name}.devices", f"'{device}'", f"{name}-{device}",
                           expanded | {"options": options, "space": name})  # fmt: skip
    return {**config, "runs": runs}


def _add_generated(runs: dict, config: dict, key: str, what: str, name: str, spec: dict) -> None:
    """Add a run generated from another (per device type, per architecture seed), refusing
    a name that a configured or already generated run has."""
    if name in config.get("runs", {}) or name in runs:
        raise ConfigError(
            f"{key}: the run it generates for {what}, '{name}', has the name of another run; "
            "rename one of them"
        )
    runs[name] = spec


def expand_arch_runs(config: dict) -> dict:
    """Turn a run that lists ``arch_seeds`` into one run per architecture seed, named
    ``<run>-a<k>``, with ``model_args.arch_seed: k``, and record the group under
    ``arch_groups`` (run -> its generated runs), which the tables summarise as a
    distribution (``report.random_archs``)."""
    runs, groups = {}, {}
    for name, run in config.get("runs", {}).items():
        if "arch_seeds" not in run:
            runs[name] = run
            continue
        base = {k: v for k, v in run.items() if k != "arch_seeds"}
        groups[name] = []
        for k in run["arch_seeds"]:
            spec = base | {"model_args": dict(run.get("model_args", {})) | {"arch_seed": k}}
            generated = f"{name}-a{k}"
            _add_generated(runs, config, f"runs.{name}.arch_seeds", f"seed {k}", generated, spec)
            groups[name].append(generated)
    return {**config, "runs": runs, "arch_groups": groups}


def check_finite(value: Any, where: str = "") -> None:
    """Refuse NaN and infinity anywhere in a config, naming the key (a schema's minimum and
    maximum let NaN through, and YAML reads .nan and .inf as numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where or '(top level)'}: {value} is not a finite number")
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, sub in items:
        check_finite(sub, f"{where}.{key}" if where else str(key))


def _check_reference(config: dict) -> None:
    ref = config.get("reference")
    names = list(config.get("runs", {})) + list(config.get("external_runs", []))
    if ref is not None and ref not in names:
        raise ConfigError(
            f"reference: '{ref}' names no run of this config (runs: {', '.join(names)})"
        )


def _check_external_runs(config: dict) -> None:
    """An external run may not share a registered run's name: the tables would read one
    folder for both."""
    for i, name in enumerate(config.get("external_runs", [])):
        if name in config.get("runs", {}):
            raise ConfigError(
                f"external_runs.{i}: '{name}' is also a run of this config; an external run is "
                "written by a rule of your own, a run by a registered method: rename one"
            )


def _check_verdict(config: dict) -> None:
    """Every run the verdict names must exist, so a typo is not an empty table; its
    claimant and baseline must be searches, so its search precondition means something."""
    verdict = config.get("verdict")
    if not verdict:
        return
    runs = list(config.get("runs", {})) + list(config.get("external_runs", []))
    names = runs + list(config.get("arch_groups", {}))
    for key in ("claimant", "baseline", "fixed", "random", "unconstrained"):
        name = verdict.get(key)
        if name is not None and name not in names:
            raise ConfigError(
                f"verdict.{key}: '{name}' names no run of this config (runs: {', '.join(runs)})"
            )
    from dfnas.methods import METHODS  # loaded by check_semantics already

    for key in ("claimant", "baseline"):
        run = config.get("runs", {}).get(verdict[key])
        if run is None or not METHODS.get(run["method"]).searches:
            what = f"a run of {run['method']}" if run else "an external run"
            raise ConfigError(
                f"verdict.{key}: '{verdict[key]}' is {what}, which does not search; the "
                "verdict compares two architecture searches (the claimant and its baseline)"
            )
    random = verdict.get("random")
    if random is not None and random not in config.get("arch_groups", {}):
        raise ConfigError(
            f"verdict.random: '{random}' has no arch_seeds; expected a run of random "
            "architectures with arch_seeds (one run per architecture)"
        )


def _seeds_from_the_command_line(config: dict) -> dict:
    """Snakemake's ``--config "seeds=[5,6]"`` reads the list's items as strings ('5', '6');
    digit strings there are the integers they spell (docs/verdict.md adds seeds this way)."""
    seeds = config.get("seeds")
    if isinstance(seeds, list) and all(isinstance(s, str) and s.isdigit() for s in seeds):
        return {**config, "seeds": [int(s) for s in seeds]}
    return config


def check_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Validate a workflow config fully and return it with defaults filled and device
    runs expanded."""
    from dfnas.config_checks import check_semantics  # heavy imports only once the schema passed

    config = _seeds_from_the_command_line(config)
    check_finite(config)
    filled = expand_arch_runs(expand_device_runs(validate_schema(config, load_schema(schema_path))))
    filled = {k: v for k, v in filled.items() if not k.startswith("x-")}  # anchors only
    check_semantics(filled)
    _check_reference(filled)
    _check_external_runs(filled)
    _check_verdict(filled)
    return filled
