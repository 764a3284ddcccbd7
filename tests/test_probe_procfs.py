"""The probe's Linux readers (edgeort.hardware._procfs) answer exactly what psutil
answers, and the probe asks psutil itself whenever a reader declines."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

from edgeort.hardware import HostSources, _procfs, probe

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc and /sys")


@linux
def test_cpu_counts_are_psutils() -> None:
    assert _procfs.cpu_counts() == (psutil.cpu_count(logical=False), psutil.cpu_count())


@linux
def test_memory_is_psutils() -> None:
    mem = _procfs.memory()
    vm = psutil.virtual_memory()
    assert mem is not None
    total, available = mem
    assert total == vm.total
    # "available" moves between the two reads; it must be the same figure, not an estimate
    assert 0 < available <= total
    assert abs(available - vm.available) <= 0.05 * total


@linux
def test_battery_absent_agrees_with_psutil() -> None:
    assert _procfs.battery_absent() == (psutil.sensors_battery() is None)


@linux
def test_the_probe_falls_back_to_psutil_when_a_reader_declines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def declines(name: str, answer: object) -> None:
        def reader() -> object:
            asked.append(name)
            return answer

        monkeypatch.setattr(_procfs, name, reader)

    declines("cpu_counts", None)
    declines("memory", None)
    declines("battery_absent", False)
    src = HostSources()
    assert src.cpu_counts() == (psutil.cpu_count(logical=False), psutil.cpu_count())
    mem = src.memory()
    assert mem is not None and mem[0] == psutil.virtual_memory().total
    assert (src.battery() is None) == (psutil.sensors_battery() is None)
    assert asked == ["cpu_counts", "memory", "battery_absent"]
    device = probe(sources=HostSources())  # the whole probe, with every reader declining
    assert device.logical_cores == psutil.cpu_count()
    assert device.memory_total == psutil.virtual_memory().total


@linux
def test_a_reader_declines_what_psutil_would_estimate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  1000 kB\nMemFree:  10 kB\n", encoding="utf-8")
    real_open = open

    def fake_open(path: str, *args: object, **kwargs: object) -> object:
        return real_open(meminfo if path == "/proc/meminfo" else path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", fake_open)
    assert _procfs.memory() is None  # no MemAvailable: psutil estimates, so we ask psutil
    meminfo.write_text("MemTotal:  1000 kB\nMemAvailable:  0 kB\n", encoding="utf-8")
    assert _procfs.memory() is None  # zero: psutil estimates too
    meminfo.write_text("MemTotal:  1000 kB\nMemAvailable:  400 kB\n", encoding="utf-8")
    assert _procfs.memory() == (1000 * 1024, 400 * 1024)
