"""Records of the EP module (:mod:`edgeort.hardware.ep`) that only the build and measure
sides use: :class:`EpChoice` (where a variant is verified at build time) and
:class:`Knobs` (the session settings a measurement overrides). Imported on first use,
through ``edgeort.hardware.ep``: ``edgeort.load()`` needs neither."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeort.hardware.device import CPU_EP, hardware_type

__all__ = ["EpChoice", "Knobs"]


@dataclass(frozen=True, slots=True)
class EpChoice:
    """Where verification runs. ``on_ep`` is the EP asked for; ``reason`` says why it
    is the CPU EP when the profile wants another. ``simulated``: the EP runs here only
    in simulation (QNN HTP on x86_64), so its latency means nothing."""

    wanted: str
    on_ep: str
    reason: str = ""
    simulated: bool = False
    devices: tuple[Any, ...] = ()
    provider_options: dict[str, str] = field(default_factory=dict)

    @property
    def device_type(self) -> str:
        """``cpu`` | ``gpu`` | ``npu`` of the device verification ran on ("" unknown)."""
        if self.on_ep == CPU_EP:
            return "cpu"
        if self.devices:
            return hardware_type(self.devices[0].device)
        return ""

    @property
    def present(self) -> bool:
        """The wanted EP runs here (really, not in simulation)."""
        return self.on_ep == self.wanted and not self.simulated


@dataclass(frozen=True, slots=True)
class Knobs:
    """Session settings a measurement sets; ``None`` keeps the target's own value."""

    threads: int | None = None  # intra-op threads
    inter_threads: int | None = None
    spinning: bool | None = None  # session.intra_op.allow_spinning
    graph_opt: str | None = None  # disable | basic | extended | all
    execution_mode: str | None = None  # sequential | parallel
    mem_pattern: bool | None = None
    cpu_arena: bool | None = None
    ep_options: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, str] = field(default_factory=dict)
    free_dims: Mapping[str, int] = field(default_factory=dict)  # named dim -> fixed value

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("threads", "inter_threads", "spinning", "graph_opt", "execution_mode")
            if getattr(self, k) is not None
        }
        if self.ep_options:
            out["ep_options"] = dict(self.ep_options)
        return out
