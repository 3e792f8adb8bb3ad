"""A method's declaration: what the workflow knows of it without building it.

The implementation (a ``FedMethod`` subclass) says how a method trains; this says what a
run of it asks of the workflow, and is registered with it by name::

    @METHODS.register("fednas", options=FednasOptions, default_model="darts_search",
                      searches=True, writes={"genotype.json": "genotype"}, stages=(...))
    class Fednas(FedMethod): ...

``METHODS.get(name)`` is the ``MethodSpec``: the workflow reads its stages, figures and
options from it, and ``spec.build(setup)`` makes the method object a job trains with. A
variant registers ``like=`` another method, taking its declarations and changing some.

``writes`` names the files a method writes beside the result contract and the member of
the method that gives each one's JSON (a method or an attribute). A stage writes what
the method it runs declares, so the two cannot disagree; ``build`` checks that every
member named exists before the first round, and ``check_stages``, when the workflow
starts, that every hand-off a stage receives is written by the stage before and every
figure drawn from a file the last stage writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dfnas.errors import ConfigError
from dfnas.methods.options import parse_options
from dfnas.methods.stages import ONE_STAGE, RunFigure, Stage
from dfnas.registry import Registry

if TYPE_CHECKING:
    from dfnas.methods.base import FedMethod, MethodSetup


@dataclass(frozen=True)
class NoOptions:
    pass


def no_files(options: dict[str, Any]) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class MethodSpec:
    """Everything the workflow reads of a method, declared once at its registration."""

    name: str
    implementation: type[FedMethod]
    # typed options (``methods.options``): a config value of the wrong type stops the
    # workflow at start, naming the option
    options: type = NoOptions
    default_model: str = "cnn"
    # the workflow's rules for this method: one per stage, one per figure
    stages: tuple[Stage, ...] = ONE_STAGE
    figures: tuple[RunFigure, ...] = ()
    # a NAS method: its final network is an architecture found, exported by default
    # (config key ``export: nas``) and checked in another runtime
    searches: bool = False
    # file beside the contract -> the method's member that gives its JSON
    writes: dict[str, str] = field(default_factory=dict)
    # the options that make a run search for one device type, from the config's budget
    # for it (``macs``, ``latency_ms``); None: the method does not search per device
    per_device: Callable[[str, dict[str, float]], dict[str, Any]] | None = None
    # the files a run with these options reads beyond its data, made by the workflow and
    # passed by path (``MethodSetup.inputs``; DFNAS: ``latency_table``) ...
    reads: Callable[[dict[str, Any]], tuple[str, ...]] = no_files
    # ... and how each is made, on the machine that trains: name -> function(in_shape,
    # num_classes, model_args, device) -> its JSON (``dfnas latency``)
    makes: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def build(self, setup: MethodSetup) -> FedMethod:
        """The method object a job trains with, its options parsed and checked."""
        method = self.implementation(setup, parse_options(self.options, setup.options))
        missing = [m for m in self.writes.values() if not hasattr(method, m)]
        if missing:
            raise TypeError(
                f"method '{self.name}' declares writes from {missing}, which "
                f"{self.implementation.__name__} does not have"
            )
        return method

    def files(self, method: FedMethod) -> dict[str, Any]:
        """The files ``writes`` declares, from the trained method: name -> JSON."""
        out = {}
        for name, member in self.writes.items():
            value = getattr(method, member)
            out[name] = value() if callable(value) else value
        return out

    def stage_writes(self, stage: Stage) -> tuple[str, ...]:
        """The files ``stage`` writes beside the contract: its method's ``writes``."""
        spec = self if stage.method is None else METHODS.get(stage.method)
        return tuple(spec.writes)

    def check_stages(self) -> None:
        """Every hand-off a stage receives is a file the stage before writes, and every
        figure is drawn from a file the last stage writes."""
        for before, stage in zip(self.stages, self.stages[1:], strict=False):
            written = self.stage_writes(before)
            for arg, file in stage.receives.items():
                if file not in written:
                    raise ConfigError(
                        f"method '{self.name}': stage {stage.name} receives {arg} from "
                        f"'{file}', which stage {before.name} does not write ({list(written)})"
                    )
        last = self.stage_writes(self.stages[-1])
        for fig in self.figures:
            if fig.source not in last:
                raise ConfigError(
                    f"method '{self.name}': figure {fig.name} is drawn from '{fig.source}', "
                    f"which its last stage does not write ({list(last)})"
                )

    def device_options(self, device: str, budget: dict[str, float]) -> dict[str, Any]:
        if self.per_device is None:
            raise ConfigError(f"method '{self.name}' does not search per device type")
        return self.per_device(device, budget)

    def input_files(self, options: dict[str, Any]) -> tuple[str, ...]:
        return self.reads(options)

    def make_input(
        self,
        name: str,
        in_shape: tuple[int, int, int],
        num_classes: int,
        model_args: dict[str, Any],
        device: Any,
    ) -> Any:
        """Input file ``name`` of a run with these model arguments, made here."""
        if name not in self.makes:
            made = ", ".join(self.makes) or "nothing"
            raise ConfigError(f"method '{self.name}' makes no {name} (it makes: {made})")
        return self.makes[name](in_shape, num_classes, model_args, device)


class MethodRegistry(Registry[MethodSpec]):
    """Methods by name; registering a class declares it (``MethodSpec``'s fields).

    The method files are imported on the first lookup, not with the package: they import
    torch, and the workflow's parse, which reads only the stage machinery, should not
    pay for it (``dfnas.workflow_plan``)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self._discover: Callable[[], None] | None = None

    def discover_with(self, discover: Callable[[], None]) -> None:
        """Import every method's file (through ``discover``) on the first lookup."""
        self._discover = discover

    def _load(self) -> None:
        discover, self._discover = self._discover, None  # once; registering looks up too
        if discover is None:
            return
        try:
            discover()
        except BaseException:
            self._discover = discover  # a method file failed: the next lookup says so again
            raise

    def get(self, name: str) -> MethodSpec:
        self._load()
        return super().get(name)

    def names(self) -> list[str]:
        self._load()
        return super().names()

    def __contains__(self, name: object) -> bool:
        self._load()
        return super().__contains__(name)

    def register(self, name: str, like: str | None = None, **declared: Any) -> Callable:
        def add(cls: type[FedMethod]) -> type[FedMethod]:
            if like is not None:
                spec = replace(self.get(like), name=name, implementation=cls, **declared)
            else:
                spec = MethodSpec(name=name, implementation=cls, **declared)
            Registry.register(self, name)(spec)
            return cls

        return add


METHODS = MethodRegistry("method")
