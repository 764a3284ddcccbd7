"""session_options_for(): profile + variant executor_info + overrides -> SessionOptions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import onnxruntime as ort
import pytest

from edgeort.bundle import open_bundle, write_bundle
from edgeort.errors import UsageError
from edgeort.hardware import probe
from edgeort.hardware.device import Battery
from edgeort.hardware.ep import ep_cache_dir, expand_options
from edgeort.profiles import get_profile
from edgeort.profiles.match import intra_op_threads
from edgeort.runtime import session_options_for
from tests.test_runtime_support import chain_model, variant_spec


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("opts")
    model = chain_model(("Relu",), shape=[1, 4])
    specs = [
        variant_spec(
            tmp,
            "cpu",
            "CPUExecutionProvider",
            model,
            profile="cpu-x86-64",
            session_options={"session.set_denormal_as_zero": "1"},
        ),
        variant_spec(
            tmp,
            "qnn",
            "QNNExecutionProvider",
            model,
            profile="qnn-htp",
            provider_options={"backend_type": "htp"},
            session_options={"session.intra_op.allow_spinning": "1"},
        ),
    ]
    bundle = open_bundle(write_bundle(tmp / "b", specs, package_name="b"))
    return {v.name: v for v in bundle.variants}


def entry(so: ort.SessionOptions, key: str) -> str | None:
    try:
        return so.get_session_config_entry(key)
    except RuntimeError:  # ORT: "does not have configuration with key"
        return None


def test_threads_follow_the_profile_rule(variants: dict) -> None:
    device = probe(register_plugins=False)
    profile = get_profile("cpu-x86-64")
    so = session_options_for(variants["cpu"], profile, device)
    assert so.intra_op_num_threads == intra_op_threads(profile, device)
    assert so.inter_op_num_threads == profile.session.inter_op_threads
    assert (
        session_options_for(variants["cpu"], profile, device, threads=1).intra_op_num_threads == 1
    )


def test_bad_threads_is_usage_error(variants: dict) -> None:
    with pytest.raises(UsageError, match="threads"):
        session_options_for(variants["cpu"], None, probe(register_plugins=False), threads=-2)


def test_variant_options_override_profile_and_overrides_override_both(variants: dict) -> None:
    device = probe(register_plugins=False)
    profile = get_profile("qnn-htp")  # its config sets allow_spinning = "0"
    assert profile.session.config["session.intra_op.allow_spinning"] == "0"
    so = session_options_for(variants["qnn"], profile, device)
    assert entry(so, "session.intra_op.allow_spinning") == "1"  # the variant's value
    so = session_options_for(
        variants["qnn"], profile, device, overrides={"session.intra_op.allow_spinning": "0"}
    )
    assert entry(so, "session.intra_op.allow_spinning") == "0"
    assert entry(so, "session.record_ep_graph_assignment_info") == "1"


def test_graph_optimization_level_and_mode_from_profile(variants: dict) -> None:
    device = probe(register_plugins=False)
    profile = get_profile("openvino-cpu")
    assert profile.session.graph_optimization_level == "disable"
    so = session_options_for(variants["cpu"], profile, device)
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    so = session_options_for(variants["cpu"], get_profile("cpu-x86-64"), device)
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_strict_sets_no_cpu_fallback_only_for_non_cpu_eps(variants: dict) -> None:
    device = probe(register_plugins=False)
    so = session_options_for(variants["qnn"], get_profile("qnn-htp"), device, strict=True)
    assert entry(so, "session.disable_cpu_ep_fallback") == "1"
    so = session_options_for(variants["cpu"], get_profile("cpu-x86-64"), device, strict=True)
    assert entry(so, "session.disable_cpu_ep_fallback") is None
    assert entry(so, "session.set_denormal_as_zero") == "1"


def test_spinning_off_on_battery(variants: dict) -> None:
    device = probe(register_plugins=False)
    on_battery = replace(device, battery=Battery(percent=50.0, plugged=False))
    plugged = replace(device, battery=Battery(percent=50.0, plugged=True))
    assert (
        entry(
            session_options_for(variants["cpu"], None, on_battery),
            "session.intra_op.allow_spinning",
        )
        == "0"
    )
    assert (
        entry(
            session_options_for(variants["cpu"], None, plugged), "session.intra_op.allow_spinning"
        )
        == "1"
    )


def test_cache_dir_placeholder_is_a_per_variant_directory(variants: dict) -> None:
    opts = expand_options({"trt_engine_cache_path": "{cache_dir}", "x": "1"}, variants["cpu"])
    where = Path(opts["trt_engine_cache_path"])
    assert where == ep_cache_dir(variants["cpu"]) and where.is_dir()
    assert opts["x"] == "1"
    assert ep_cache_dir(variants["cpu"]) != ep_cache_dir(variants["qnn"])


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_tune_measures_the_session_load_opens(variants: dict, mode: str) -> None:
    """A tuned execution mode is timed with the inter-op threads load() will use for it
    (parallel with one inter-op thread would run sequentially: tune timed another
    session than the one it saved)."""
    from edgeort.hardware.ep import Knobs, _measure_options

    device = probe(register_plugins=False)
    profile = get_profile("cpu-x86-64")
    knobs = Knobs(threads=2, graph_opt="basic", execution_mode=mode)
    timed = _measure_options(variants["cpu"], profile, device, knobs)
    loaded = session_options_for(
        variants["cpu"],
        profile,
        device,
        threads=2,
        graph_optimization_level="basic",
        execution_mode=mode,
    )
    for attr in (
        "inter_op_num_threads",
        "intra_op_num_threads",
        "execution_mode",
        "graph_optimization_level",
    ):
        assert getattr(timed, attr) == getattr(loaded, attr), attr
    assert (timed.inter_op_num_threads == 0) is (mode == "parallel")
