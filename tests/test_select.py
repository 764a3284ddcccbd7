"""Ranking: table-driven fits/exclusions with reasons, ordering, threads, target names."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from edgeort.errors import ProfileError, UsageError
from edgeort.hardware.device import Accelerator, DeviceInfo, EpDevice, PluginEp
from edgeort.profiles import Match, Profile, Runtime, SessionSettings
from edgeort.profiles.match import Candidate, intra_op_threads, rank, resolve_target

CPU_DEV = EpDevice("CPUExecutionProvider", "Microsoft", "cpu", "AMD", 0x1022)


def device(**over: Any) -> DeviceInfo:
    base = DeviceInfo(
        os="linux",
        os_version="test",
        arch="x86_64",
        cpu_vendor="amd",
        cpu_model="test cpu",
        cpu_flags=frozenset({"avx2", "fma", "avx512f", "avx512_vnni"}),
        physical_cores=8,
        logical_cores=16,
        performance_cores=None,
        efficiency_cores=None,
        memory_total=None,
        memory_available=None,
        battery=None,
        soc=None,
        accelerators=(),
        ort_version="1.32.0",
        ort_build_providers=("CPUExecutionProvider",),
        plugin_eps=(),
        ep_devices=(CPU_DEV,),
    )
    return replace(base, **over)


def profile(name: str = "p", *, ep: str = "CPUExecutionProvider", **kw: Any) -> Profile:
    runtime_keys = {"device", "package", "plugin_module", "min_ort", "simulated_on"}
    rt = Runtime(ep=ep, **{k: v for k, v in kw.items() if k in runtime_keys})
    session = SessionSettings(intra_op_threads=kw.pop("threads", "performance"))
    match = Match(**{k: v for k, v in kw.items() if k not in runtime_keys | {"short", "default"}})
    return Profile(
        name=name,
        description="test",
        version="1",
        short=kw.get("short", "cpu"),
        default=kw.get("default", False),
        runtime=rt,
        match=match,
        session=session,
    )


def plugin(ep: str, package: str, *, registered: bool = True, error: str | None = None) -> PluginEp:
    return PluginEp(ep, package, package.replace("-", "_"), "/lib.so", "1.0", registered, error)


QNN = {
    "ep": "QNNExecutionProvider",
    "package": "onnxruntime-qnn",
    "plugin_module": "onnxruntime_qnn",
}
OV = {"ep": "OpenVINOExecutionProvider", "package": "onnxruntime-ep-openvino"}
QNN_CPU_DEV = EpDevice("QNNExecutionProvider", "Qualcomm", "cpu", "AMD", 0x1022)
OV_PLUGIN = plugin("OpenVINOExecutionProvider", "onnxruntime-ep-openvino")

# (id, profile kwargs, device overrides, fits, a reason that must be there)
CASES = [
    ("isa-present", {"cpu_flags_all": ("avx512_vnni",)}, {}, True, "avx512_vnni present"),
    (
        "isa-missing",
        {"cpu_flags_all": ("avx2", "amx_int8", "amx_tile")},
        {},
        False,
        "CPU lacks amx_int8, amx_tile (cpu_flags_all)",
    ),
    (
        "isa-any-hit",
        {"cpu_flags_any": ("avx_vnni", "avx512_vnni")},
        {},
        True,
        "avx512_vnni present",
    ),
    (
        "isa-any-miss",
        {"cpu_flags_any": ("i8mm", "asimddp")},
        {},
        False,
        "CPU has none of i8mm, asimddp (cpu_flags_any)",
    ),
    (
        "isa-none-violated",
        {"cpu_flags_none": ("avx512_vnni",)},
        {},
        False,
        "CPU has avx512_vnni, which this profile excludes",
    ),
    ("os-wrong", {"os": ("android",)}, {}, False, "os is linux; profile is for android"),
    ("arch-wrong", {"arch": ("arm64",)}, {}, False, "arch is x86_64; profile is for arm64"),
    (
        "vendor-wrong",
        {"cpu_vendor_any": ("intel",)},
        {},
        False,
        "CPU vendor is amd; profile is for intel",
    ),
    (
        "plugin-missing",
        QNN | {"arch": ("x86_64",)},
        {},
        False,
        "QNNExecutionProvider not installed: pip install onnxruntime-qnn "
        "(or: pip install edgeort[qnn])",
    ),
    (
        "builtin-missing",
        {"ep": "DmlExecutionProvider", "package": "onnxruntime-directml"},
        {},
        False,
        "it ships in pip package onnxruntime-directml",
    ),
    (
        "plugin-no-device",
        OV,
        {"plugin_eps": (OV_PLUGIN,)},
        False,
        "installed and registered but reports no device here: the OpenVINO plugin lists Intel "
        "hardware only; CPU vendor is amd",
    ),
    (
        "plugin-not-registered",
        QNN,
        {
            "plugin_eps": (
                plugin(
                    "QNNExecutionProvider",
                    "onnxruntime-qnn",
                    registered=False,
                    error="library missing",
                ),
            )
        },
        False,
        "is installed (onnxruntime-qnn 1.0) but not registered: library missing",
    ),
    (
        "device-type-wrong",
        OV | {"device": "npu"},
        {
            "plugin_eps": (OV_PLUGIN,),
            "ep_devices": (EpDevice("OpenVINOExecutionProvider", "Intel", "gpu", "Intel", 0x8086),),
        },
        False,
        "OpenVINOExecutionProvider has devices of type gpu; profile wants npu",
    ),
    (
        "ort-too-old",
        {"min_ort": "1.40"},
        {},
        False,
        "onnxruntime 1.32.0 is older than runtime.min_ort",
    ),
    ("ort-missing", {}, {"ort_version": None}, False, "onnxruntime is not installed"),
    (
        "soc-hit",
        {"soc_any": ("snapdragon",)},
        {"soc": "Qualcomm Snapdragon SM8550"},
        True,
        "matches 'snapdragon'",
    ),
    ("soc-miss", {"soc_any": ("snapdragon",)}, {}, False, "SoC is 'unknown'"),
    (
        "accel-hit",
        {"accelerators_any": ("npu:intel",)},
        {"accelerators": (Accelerator("npu", "intel", "npu", "/sys/class/accel/accel0"),)},
        True,
        "accelerator npu:intel present (/sys/class/accel/accel0)",
    ),
    (
        "accel-miss",
        {"accelerators_any": ("npu:intel",)},
        {},
        False,
        "no accelerator npu:intel (found: none)",
    ),
]


@pytest.mark.parametrize(
    ("kw", "dev", "fits", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_fit_and_reasons(kw: dict[str, Any], dev: dict[str, Any], fits: bool, reason: str) -> None:
    (cand,) = rank([profile(**kw)], device(**dev))
    assert cand.fits is fits
    assert any(reason in r for r in cand.reasons), cand.reasons


def test_excluded_lists_every_failing_predicate() -> None:
    kw = QNN | {"os": ("android",), "arch": ("arm64",), "cpu_flags_all": ("i8mm",)}
    (cand,) = rank([profile(**kw)], device())
    text = "\n".join(cand.reasons)
    for part in ("os is linux", "arch is x86_64", "CPU lacks i8mm", "pip install onnxruntime-qnn"):
        assert part in text


def test_fitting_first_by_priority_then_excluded() -> None:
    profiles = [
        profile("low", priority=1),
        profile("excluded-high", priority=99, os=("darwin",)),
        profile("high", priority=50),
        profile("mid", priority=20),
    ]
    ranking = rank(profiles, device())
    assert [c.profile.name for c in ranking] == ["high", "mid", "low", "excluded-high"]
    assert [c.fits for c in ranking] == [True, True, True, False]
    assert [c.score for c in ranking] == [50, 20, 1, 99]


def test_equal_priority_is_ordered_by_name() -> None:
    ranking = rank([profile("b"), profile("a"), profile("c")], device())
    assert [c.profile.name for c in ranking] == ["a", "b", "c"]


def test_simulated_ranks_below_every_real_fit() -> None:
    dev = device(
        plugin_eps=(plugin("QNNExecutionProvider", "onnxruntime-qnn"),),
        ep_devices=(CPU_DEV, QNN_CPU_DEV),
    )
    qnn = profile(
        "qnn-htp", short="qnn", priority=90, arch=("arm64",),
        accelerators_any=("npu:qualcomm",), simulated_on=("x86_64",), **QNN,
    )  # fmt: skip
    ranking = rank([qnn, profile("cpu", priority=1)], dev)
    assert [c.profile.name for c in ranking] == ["cpu", "qnn-htp"]
    sim = ranking[1]
    assert sim.fits and sim.simulated and not ranking[0].simulated
    assert "QNNExecutionProvider registered (simulated HTP on x86_64)" in sim.reasons


def test_simulated_still_needs_the_plugin() -> None:
    qnn = profile("qnn-htp", simulated_on=("x86_64",), **QNN)
    (cand,) = rank([qnn], device())
    assert not cand.fits and cand.simulated
    assert any("pip install onnxruntime-qnn" in r for r in cand.reasons)


def test_not_simulated_on_its_real_arch() -> None:
    dev = device(
        arch="arm64",
        cpu_flags=frozenset({"asimd"}),
        accelerators=(Accelerator("npu", "qualcomm", "hexagon", "/dev/fastrpc-cdsp"),),
        plugin_eps=(plugin("QNNExecutionProvider", "onnxruntime-qnn"),),
        ep_devices=(EpDevice("QNNExecutionProvider", "Qualcomm", "npu", "Qualcomm", 0),),
    )
    qnn = profile("qnn-htp", arch=("arm64",), accelerators_any=("npu:qualcomm",),
                  simulated_on=("x86_64",), device="npu", **QNN)  # fmt: skip
    (cand,) = rank([qnn], dev)
    assert cand.fits and not cand.simulated
    assert "QNNExecutionProvider has a npu device" in cand.reasons


@pytest.mark.parametrize(
    ("setting", "dev", "expected"),
    [
        ("performance", {"performance_cores": 4, "efficiency_cores": 8}, 4),
        ("performance", {}, 8),  # no P/E split known: physical cores
        ("physical", {"performance_cores": 4}, 8),
        ("physical", {"physical_cores": None}, 16),
        (3, {}, 3),
        (0, {}, 0),
        (
            "performance",
            {"performance_cores": None, "physical_cores": None, "logical_cores": None},
            1,
        ),
    ],
)
def test_intra_op_threads(setting: str | int, dev: dict[str, Any], expected: int) -> None:
    prof = profile(threads=setting)
    assert intra_op_threads(prof, device(**dev)) == expected
    assert rank([prof], device(**dev))[0].threads == expected


def test_intra_op_threads_rejects_nonsense() -> None:
    with pytest.raises(ProfileError, match=r"session\.intra_op_threads"):
        intra_op_threads(profile(threads="fast"), device())


def test_resolve_target_exact_short_default_and_unknown() -> None:
    vnni = profile("cpu-vnni", priority=20, cpu_flags_any=("avx512_vnni",))
    plain = profile("cpu-plain", priority=10, default=True)
    arm = profile("cpu-arm", priority=10, arch=("arm64",))
    profiles = [vnni, plain, arm]
    assert resolve_target("cpu-arm", profiles) is arm
    assert resolve_target("cpu", profiles, device()) is vnni
    assert resolve_target("cpu", profiles) is plain  # no device: the default one
    no_fit = device(os="darwin", arch="riscv64", cpu_flags=frozenset())
    assert resolve_target("cpu", [vnni, plain, replace(arm, default=False)], no_fit) is plain
    with pytest.raises(UsageError, match=r"did you mean 'cpu-vnni'"):
        resolve_target("cpu-vnn", profiles)
    with pytest.raises(UsageError, match="none is marked default"):
        resolve_target("cpu", [vnni, arm])


def test_candidate_json_has_documented_keys() -> None:
    (cand,) = rank([profile("x", priority=3)], device())
    assert isinstance(cand, Candidate)
    data = cand.to_json()
    assert set(data) == {"profile", "short", "ep", "fits", "score", "simulated", "threads",
                         "reasons", "source"}  # fmt: skip
    assert data["profile"] == "x" and data["fits"] is True and data["source"] == "builtin"


def test_builtin_profiles_rank_on_this_machine() -> None:
    from edgeort.hardware import probe
    from edgeort.profiles import builtin_profiles

    profiles = builtin_profiles()
    dev = probe()
    ranking = rank(profiles, dev)
    assert len(ranking) == len(profiles)
    fits = [c.fits for c in ranking]
    assert fits == sorted(fits, reverse=True)  # every fit before every exclusion
    assert all(c.reasons for c in ranking)
    best = ranking[0]
    ov_here = bool(dev.ep_device_types("OpenVINOExecutionProvider"))
    assert best.fits and not best.simulated
    assert best.profile.short == ("openvino" if ov_here else "cpu")
    cpu_best = next(c for c in ranking if c.profile.short == "cpu")
    assert resolve_target("cpu", profiles, dev) is cpu_best.profile
    for cand in ranking:
        ep = cand.profile.runtime.ep
        if ep == "OpenVINOExecutionProvider" and not dev.ep_device_types(ep):
            assert not cand.fits
            assert any("reports no device here" in r or "not installed" in r for r in cand.reasons)


def test_builtin_profiles_on_a_sapphire_rapids_with_both_plugins() -> None:
    """The issue's target machine (Intel Xeon, AVX-512 VNNI + AMX, OpenVINO and QNN
    plugins installed): OpenVINO first, then the VNNI CPU profile, QNN fits only as a
    simulation below them, and CoreML/NNAPI/DirectML say why they are excluded."""
    from edgeort.profiles import builtin_profiles

    intel = EpDevice("CPUExecutionProvider", "Microsoft", "cpu", "Intel", 0x8086)
    dev = device(
        cpu_vendor="intel",
        cpu_model="Intel(R) Xeon(R) Platinum 8480+",
        cpu_flags=frozenset(
            {
                "avx2",
                "fma",
                "f16c",
                "avx512f",
                "avx512bw",
                "avx512vl",
                "avx512_vnni",
                "avx512_bf16",
                "avx512_fp16",
                "amx_tile",
                "amx_int8",
                "amx_bf16",
            }
        ),
        physical_cores=2,
        logical_cores=2,
        ort_build_providers=("CPUExecutionProvider",),
        plugin_eps=(
            plugin("OpenVINOExecutionProvider", "onnxruntime-ep-openvino"),
            plugin("QNNExecutionProvider", "onnxruntime-qnn"),
        ),
        ep_devices=(
            intel,
            EpDevice("OpenVINOExecutionProvider", "Intel", "cpu", "Intel", 0x8086),
            EpDevice("QNNExecutionProvider", "Qualcomm", "cpu", "Intel", 0x8086),
        ),
    )
    ranking = rank(builtin_profiles(), dev)
    fitting = [c for c in ranking if c.fits]
    names = [c.profile.name for c in fitting]
    assert names[:2] == ["openvino-cpu", "cpu-x86-64-vnni"]
    qnn = next(c for c in ranking if c.profile.short == "qnn")
    assert qnn.fits and qnn.simulated
    assert all(not c.simulated for c in fitting[: names.index(qnn.profile.name)])
    for short in ("coreml", "nnapi", "directml"):
        cand = next(c for c in ranking if c.profile.short == short)
        assert not cand.fits and cand.reasons, short
    assert all(c.threads == 2 for c in fitting)
