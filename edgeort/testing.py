"""Fakes for hardware this machine does not have -- for tests only, clearly named.

:class:`FakeProviders` makes a :class:`~edgeort.hardware.device.DeviceInfo` claim that
EPs such as CoreML, NNAPI, DirectML or TensorRT are there (built in, or with a device), so
ranking and fallback can be tested where those EPs cannot run. Every faked device says so:
its ``ep_vendor`` is ``"FakeProviders"`` and :meth:`FakeProviders.apply` adds a note.
Nothing in edgeort's own code paths imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from edgeort.hardware.device import DeviceInfo, EpDevice

__all__ = ["FakeProviders", "fake_ep_device"]


@dataclass(frozen=True, slots=True)
class FakeProviders:
    """Simulated availability of EPs this machine cannot run -- for tests only.

    ``build`` names are added to ``DeviceInfo.ort_build_providers`` (as if the onnxruntime
    wheel had them compiled in, like CoreML in the macOS arm64 wheel); ``devices`` are added
    to ``DeviceInfo.ep_devices``. :meth:`apply` also adds a note saying it was faked.
    """

    build: tuple[str, ...] = ()
    devices: tuple[EpDevice, ...] = ()

    @classmethod
    def of(cls, *ep_names: str, device_type: str = "") -> FakeProviders:
        """Fake ``ep_names`` as built in; with ``device_type``, also give each a device."""
        devices = tuple(fake_ep_device(n, device_type) for n in ep_names if device_type)
        return cls(build=tuple(ep_names), devices=devices)

    def apply(self, device: DeviceInfo) -> DeviceInfo:
        names = sorted({*self.build, *(d.ep_name for d in self.devices)})
        note = f"FakeProviders (tests only): simulated availability of {', '.join(names)}"
        return replace(
            device,
            ort_build_providers=_merged(device.ort_build_providers, self.build),
            ep_devices=(*device.ep_devices, *self.devices),
            notes=(*device.notes, note),
        )


def fake_ep_device(ep_name: str, device_type: str, vendor: str = "fake") -> EpDevice:
    """An :class:`EpDevice` record for a fake EP (``ep_vendor`` says ``FakeProviders``)."""
    return EpDevice(ep_name, "FakeProviders", device_type, vendor, 0, {"fake": "1"})


def _merged(first: Iterable[str], more: Iterable[str]) -> tuple[str, ...]:
    out = list(first)
    out.extend(n for n in more if n not in out)
    return tuple(out)
