"""Device profiles: built-ins, the schema, bad-profile fixtures, extends, user profiles."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import platformdirs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeort.errors import ProfileError
from edgeort.profiles import (
    SHORT_NAMES,
    Match,
    ModelPrep,
    Profile,
    Recipe,
    Runtime,
    SessionSettings,
    Verify,
    builtin_dir,
    builtin_profiles,
    check_profile_file,
    get_profile,
    load_profile_file,
    load_profiles,
    profile_to_dict,
    profile_to_toml,
    user_profile_dir,
)
from edgeort.profiles.schema import RECIPE, SECTIONS

BAD_DIR = Path(__file__).parent / "data" / "profiles_bad"
BAD_FIXTURES = sorted(BAD_DIR.glob("*.toml"))
EXPECTED_BUILTINS = {
    "cpu-x86-64",
    "cpu-x86-64-vnni",
    "cpu-arm64",
    "openvino-cpu",
    "openvino-gpu",
    "openvino-npu",
    "qnn-htp",
    "coreml",
    "nnapi",
    "directml",
    "tensorrt",
}
MINIMAL = """\
[profile]
name = "{name}"
description = "a test profile"
version = "1"
short = "{short}"
{extra_profile}
[runtime]
ep = "CPUExecutionProvider"
fallback = []
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def minimal(name: str, short: str = "cpu", extra_profile: str = "") -> str:
    return MINIMAL.format(name=name, short=short, extra_profile=extra_profile)


def child(name: str, parent: str, body: str = "") -> str:
    return f'[profile]\nname = "{name}"\nextends = "{parent}"\n{body}'


def problems_of(exc: pytest.ExceptionInfo[ProfileError]) -> list[tuple[str, str, str]]:
    return [(p.path, p.key, p.message) for p in exc.value.problems]


# ---- built-in profiles ---------------------------------------------------------------


def test_every_builtin_file_loads_into_a_profile() -> None:
    files = sorted(builtin_dir().glob("*.toml"))
    profiles = builtin_profiles()
    assert len(profiles) == len(files) >= len(EXPECTED_BUILTINS)
    assert {p.source for p in profiles} == set(files)
    assert {p.name for p in profiles} >= EXPECTED_BUILTINS
    for p in profiles:
        assert isinstance(p, Profile) and p.builtin
        assert load_profile_file(p.source) == dataclasses.replace(p, builtin=False)


def test_each_short_name_has_exactly_one_default() -> None:
    profiles = builtin_profiles()
    assert {p.short for p in profiles} == set(SHORT_NAMES)
    for short in SHORT_NAMES:
        defaults = [p.name for p in profiles if p.short == short and p.default]
        assert len(defaults) == 1, (short, defaults)
        assert get_profile(short, profiles).name == defaults[0]


def test_every_builtin_sets_spinning_and_recipes_explicitly() -> None:
    for p in builtin_profiles():
        assert p.session.config.get("session.intra_op.allow_spinning") in ("0", "1"), p.name
        assert p.model.recipes.get("default") or p.model.recipes.get("transformer"), p.name
        assert p.description and p.version


def test_no_builtin_recipe_is_known_slow_or_lossy() -> None:
    for p in builtin_profiles():
        for family in ("cnn", "transformer", "default"):
            for r in p.model.recipes_for(family):
                assert r.format == "qdq", (p.name, "QOperator S8S8 is slow on x86")
        # dynamic int8 made CNNs 7x slower than fp32: never a CNN recipe
        assert all(r.mode != "dynamic" for r in p.model.recipes_for("cnn")), p.name
        if p.short == "openvino":  # static all-op QDQ destroyed a transformer on OpenVINO
            assert {r.precision for r in p.model.recipes_for("transformer")} <= {"fp32", "fp16"}


def test_x86_cpu_profiles_reduce_range_only_without_vnni() -> None:
    base, vnni = get_profile("cpu-x86-64"), get_profile("cpu-x86-64-vnni")
    assert base.default and not vnni.default and vnni.extends == "cpu-x86-64"
    assert vnni.match.priority > base.match.priority
    assert set(vnni.match.cpu_flags_any) == {"avx512_vnni", "avx_vnni", "amx_int8"}
    for profile, reduce_range in ((base, True), (vnni, False)):
        cnn = profile.model.recipes_for("cnn")[0]
        assert (cnn.mode, cnn.activation_type, cnn.weight_type) == ("static", "uint8", "int8")
        assert cnn.op_types == ("Conv",)  # Conv only first, then every op
        assert profile.model.recipes_for("cnn")[1].op_types == ()
        assert cnn.per_channel and cnn.calibrate_method == "minmax"
        transformer = profile.model.recipes_for("transformer")[0]
        assert (transformer.mode, transformer.per_channel) == ("dynamic", True)
        assert transformer.activation_type == "uint8"  # what quantize_dynamic computes
        for r in (cnn, transformer, profile.model.recipes_for("default")[0]):
            assert r.reduce_range is reduce_range


def test_accelerator_profiles_say_what_their_docs_require() -> None:
    qnn = get_profile("qnn")
    opts = qnn.runtime.provider_options
    assert opts["backend_type"] == "htp"
    assert {"htp_performance_mode", "enable_htp_fp16_precision"} <= set(opts)
    assert opts["offload_graph_io_quantization"] == "1"
    assert qnn.model.fixed_shapes and qnn.runtime.simulated_on == ("x86_64",)
    assert qnn.runtime.device == ""  # the plugin's device is type CPU on x86 (simulator)
    r = qnn.model.recipes_for("cnn")[0]
    assert (r.precision, r.mode, r.activation_type, r.weight_type) == (
        "w8a16",
        "qnn",
        "uint16",
        "uint8",
    )
    coreml = get_profile("coreml")
    assert coreml.runtime.provider_options["ModelFormat"] == "MLProgram"
    assert {"MLComputeUnits", "RequireStaticInputShapes"} <= set(coreml.runtime.provider_options)
    assert coreml.model.ort_format and coreml.model.fixed_shapes
    nnapi = get_profile("nnapi")
    assert nnapi.model.ort_format and nnapi.model.fixed_shapes
    cnn = nnapi.model.recipes_for("cnn")[0]
    assert (cnn.precision, cnn.mode, cnn.activation_type, cnn.weight_type) == (
        "int8",
        "static",
        "uint8",
        "uint8",
    )
    dml = get_profile("directml")
    assert (
        dml.session.execution_mode == "sequential" and "device_id" in dml.runtime.provider_options
    )
    assert (
        dml.model.recipes_for("cnn")[0].precision,
        dml.model.recipes_for("cnn")[0].keep_io_types,
    ) == (
        "fp16",
        True,
    )
    npu = get_profile("openvino-npu")
    assert npu.model.fixed_shapes and npu.runtime.provider_options["enable_qdq_optimizer"] == "True"
    trt = get_profile("tensorrt")
    assert trt.runtime.provider_options["trt_fp16_enable"] == "1"
    assert trt.runtime.provider_options["trt_engine_cache_enable"] == "1"
    assert "gpu:nvidia" in trt.match.accelerators_any
    arm = get_profile("cpu-arm64")
    assert arm.session.config["session.qdqisint8allowed"] == "1"
    assert arm.session.config["session.intra_op.allow_spinning"] == "0"


def test_schema_names_exactly_the_dataclass_fields() -> None:
    def names(cls: type) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    nested = {"match", "runtime", "session", "model", "verify", "source", "builtin"}
    assert set(SECTIONS["profile"]) == names(Profile) - nested
    classes = {"match": Match, "runtime": Runtime, "session": SessionSettings}
    classes |= {"model": ModelPrep, "verify": Verify}
    for section, cls in classes.items():
        assert set(SECTIONS[section]) == names(cls), section
    assert set(RECIPE) == names(Recipe)


@pytest.mark.parametrize("name", sorted(EXPECTED_BUILTINS))
def test_profile_to_toml_loads_back_equal(name: str, tmp_path: Path) -> None:
    profile = get_profile(name, builtin_profiles())
    text = profile_to_toml(profile)
    assert tomllib.loads(text) == profile_to_dict(profile)
    path = write(tmp_path / f"{name}.toml", text)
    loaded = load_profile_file(path)
    assert loaded == dataclasses.replace(profile, source=path, builtin=False)


def test_builtins_load_the_same_from_a_wheel_layout(tmp_path: Path) -> None:
    """A wheel force-includes profiles/ as edgeort/_profiles: built_dir() prefers it."""
    package = Path(__import__("edgeort").__file__).parent
    site = tmp_path / "site"
    shutil.copytree(package, site / "edgeort", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(builtin_dir(), site / "edgeort" / "_profiles")
    code = (
        "import json, edgeort.profiles as p; found = p.builtin_profiles();"
        "print(json.dumps([str(p.builtin_dir())] + [p.profile_to_dict(x) for x in found]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    where, *dicts = json.loads(out)
    assert Path(where) == site / "edgeort" / "_profiles"
    assert dicts == [profile_to_dict(p) for p in builtin_profiles()]


def test_loading_profiles_imports_neither_onnx_nor_click_nor_onnxruntime() -> None:
    code = (
        "import sys, edgeort.profiles as p; p.load_profiles();"
        "print(sorted(m for m in ('onnx', 'click', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- bad profiles --------------------------------------------------------------------


def expectations(path: Path) -> list[tuple[str, str]]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    found = re.findall(r"^# expect: (.*?) \| (.+)$", text, flags=re.MULTILINE)
    return [(key.strip(), message) for key, message in found]


@pytest.mark.parametrize("fixture", BAD_FIXTURES, ids=lambda p: p.stem)
def test_bad_fixture_yields_exactly_the_expected_problems(fixture: Path) -> None:
    expected = expectations(fixture)
    assert expected, f"{fixture.name} lists no '# expect:' lines"
    with pytest.raises(ProfileError) as exc:
        load_profile_file(fixture)
    problems = list(exc.value.problems)
    assert all(p.path == str(fixture) for p in problems)
    unmatched = list(problems)
    for key, message in expected:
        match = next((p for p in unmatched if p.key == key and message in p.message), None)
        assert match is not None, f"no problem {key!r} ~ {message!r} in {problems}"
        unmatched.remove(match)
    assert not unmatched, f"unexpected problems: {unmatched}"
    assert exc.value.exit_code == 3


def test_misspelled_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    text = (builtin_dir() / "cpu-x86-64.toml").read_text().replace("per_channel", "per_chanel", 1)
    text = text.replace('name = "cpu-x86-64"', 'name = "mine"').replace("default = true", "")
    path = write(tmp_path / "mine.toml", text)
    with pytest.raises(ProfileError) as exc:
        load_profiles([path])
    assert problems_of(exc) == [
        (
            str(path),
            "model.recipes.cnn[0].per_chanel",
            "unknown key 'per_chanel'; did you mean 'per_channel'?",
        )
    ]
    assert (
        str(exc.value)
        == f"{path}: model.recipes.cnn[0].per_chanel: " + exc.value.problems[0].message
    )


def test_unreadable_and_missing_files_are_problems(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as exc:
        load_profiles([tmp_path / "nope.toml", tmp_path])
    messages = [m for _, _, m in problems_of(exc)]
    assert len(messages) == 2 and all(m.startswith("cannot read profile file") for m in messages)


# ---- extends -------------------------------------------------------------------------


def test_extends_deep_merges_tables_and_replaces_arrays(tmp_path: Path) -> None:
    body = (
        '[runtime.provider_options]\nhtp_performance_mode = "sustained_high_performance"\n'
        'soc_model = "60"\n[match]\npriority = 70\n'
        '[[model.recipes.cnn]]\nprecision = "fp16"\n'
    )
    path = write(tmp_path / "mine.toml", child("qnn-mine", "qnn-htp", body))
    mine, parent = load_profile_file(path), get_profile("qnn-htp", builtin_profiles())
    assert mine.extends == "qnn-htp" and not mine.builtin and mine.source == path
    assert not mine.default  # a child is a default only if it says so
    opts = dict(parent.runtime.provider_options)
    opts.update(htp_performance_mode="sustained_high_performance", soc_model="60")
    assert mine.runtime.provider_options == opts
    assert mine.match == dataclasses.replace(parent.match, priority=70)
    assert mine.model.recipes["cnn"] == (Recipe(precision="fp16"),)
    assert mine.model.recipes["default"] == parent.model.recipes["default"]
    assert (mine.short, mine.verify, mine.session) == (parent.short, parent.verify, parent.session)


def test_extends_chains_across_user_files(tmp_path: Path) -> None:
    folder = user_profile_dir()
    write(folder / "a.toml", child("a", "b", "[match]\npriority = 1\n"))
    write(folder / "b.toml", child("b", "cpu-arm64", '[session]\nexecution_mode = "parallel"\n'))
    loaded = {p.name: p for p in load_profiles()}
    assert loaded["a"].match.priority == 1 and loaded["a"].session.execution_mode == "parallel"
    assert loaded["a"].runtime == loaded["cpu-arm64"].runtime
    assert loaded["b"].match.priority == loaded["cpu-arm64"].match.priority


@pytest.mark.parametrize("names", [("a", "b"), ("a", "b", "c")])
def test_extends_cycles_are_reported_for_every_member(names: tuple[str, ...]) -> None:
    folder = user_profile_dir()
    for name, parent in zip(names, names[1:] + names[:1], strict=True):
        write(folder / f"{name}.toml", child(name, parent))
    with pytest.raises(ProfileError) as exc:
        load_profiles()
    found = problems_of(exc)
    assert {p for p, _, _ in found} == {str(folder / f"{n}.toml") for n in names}
    assert len(found) == len(names)
    cycle = " -> ".join([*names, names[0]])
    assert all(k == "profile.extends" and m == f"extends cycle: {cycle}" for _, k, m in found)


def test_extending_a_broken_profile_is_a_problem_of_both(tmp_path: Path) -> None:
    folder = user_profile_dir()
    write(folder / "a.toml", child("a", "b"))
    write(folder / "b.toml", child("b", "cpu-arm64", "[match]\npriority = 'x'\n"))
    with pytest.raises(ProfileError) as exc:
        load_profiles()
    assert [(Path(p).name, k) for p, k, _ in problems_of(exc)] == [
        ("b.toml", "match.priority"),
        ("a.toml", "profile.extends"),
    ]
    assert "it has problems" in exc.value.problems[1].message


def test_user_profile_replaces_a_builtin_only_through_extends(tmp_path: Path) -> None:
    folder = user_profile_dir()
    write(folder / "clash.toml", minimal("coreml", "coreml"))
    with pytest.raises(ProfileError) as exc:
        load_profiles()
    [(_, key, message)] = problems_of(exc)
    assert key == "profile.name" and "set extends = 'coreml' to replace it" in message
    write(
        folder / "clash.toml",
        child("coreml", "coreml", '[runtime.provider_options]\nMLComputeUnits = "CPUOnly"\n'),
    )
    names = [p.name for p in load_profiles()]
    assert names == [p.name for p in builtin_profiles()]  # replaced in place
    mine = get_profile("coreml")
    assert not mine.builtin and mine.default  # a replacement keeps the default
    assert mine.runtime.provider_options["MLComputeUnits"] == "CPUOnly"


def test_a_user_default_takes_its_short_name_over() -> None:
    write(user_profile_dir() / "mine.toml", minimal("my-cpu", extra_profile="default = true"))
    profiles = load_profiles()
    assert get_profile("cpu", profiles).name == "my-cpu"
    assert not get_profile("cpu-x86-64", profiles).default
    assert get_profile("cpu-x86-64", builtin_profiles()).default


def test_set_rules_two_defaults_no_default_duplicate_names(tmp_path: Path) -> None:
    folder = user_profile_dir()
    write(folder / "1.toml", minimal("one", extra_profile="default = true"))
    write(folder / "2.toml", minimal("two", extra_profile="default = true"))
    write(folder / "3.toml", minimal("one"))
    write(folder / "4.toml", child("nnapi", "nnapi").replace("\n", "\ndefault = false\n", 1))
    with pytest.raises(ProfileError) as exc:
        load_profiles()
    found = {(Path(p).name, k, m.split(";")[0].split(" (")[0]) for p, k, m in problems_of(exc)}
    assert (
        "3.toml",
        "profile.name",
        "'one' is already the name of the profile in " + str(folder / "1.toml"),
    ) in found
    assert ("1.toml", "profile.default", "short name 'cpu' has 2 default profiles") in found
    assert ("2.toml", "profile.default", "short name 'cpu' has 2 default profiles") in found
    assert ("4.toml", "profile.default", "short name 'nnapi' has no default profile") in found
    assert len(found) == 4


# ---- user directory, extra files, lookups --------------------------------------------


def test_user_dir_is_under_the_platformdirs_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGEORT_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # platformdirs' config dir is here
    assert platformdirs.user_config_dir("edgeort") == str(tmp_path / "edgeort")
    assert user_profile_dir() == tmp_path / "edgeort" / "profiles"
    write(user_profile_dir() / "mine.toml", minimal("mine"))
    write(user_profile_dir() / "notes.txt", "not a profile")
    mine = get_profile("mine")
    assert mine.source == user_profile_dir() / "mine.toml" and not mine.builtin
    assert "mine" not in {p.name for p in load_profiles(user_dir=False)}


def test_extra_files_load_after_user_files_once(tmp_path: Path) -> None:
    user = write(user_profile_dir() / "mine.toml", minimal("mine"))
    extra = write(tmp_path / "extra.toml", minimal("extra"))
    names = [p.name for p in load_profiles([extra, user])]
    assert names[-2:] == ["mine", "extra"] and names.count("mine") == 1


def test_get_profile_exact_short_and_unknown() -> None:
    profiles = builtin_profiles()
    assert get_profile("openvino-npu", profiles).name == "openvino-npu"
    assert get_profile("openvino", profiles).name == "openvino-cpu"
    with pytest.raises(ProfileError) as exc:
        get_profile("qnn-hpt", profiles)
    [(path, key, message)] = problems_of(exc)
    assert (path, key) == ("qnn-hpt", "")
    assert message.startswith("unknown profile; did you mean 'qnn-htp'? profiles: coreml")
    assert "short names: " in message and exc.value.exit_code == 3


def test_check_profile_file_reports_only_that_files_problems(tmp_path: Path) -> None:
    write(user_profile_dir() / "broken.toml", "[profile\n")
    good = write(tmp_path / "good.toml", child("good", "cpu-arm64"))
    assert check_profile_file(good).name == "good"
    bad = write(tmp_path / "bad.toml", child("bad", "cpu-arm64", "[verify]\nmax_drop = 2\n"))
    with pytest.raises(ProfileError) as exc:
        check_profile_file(bad)
    assert problems_of(exc) == [(str(bad), "verify.max_drop", "must be between 0 and 1, got 2")]
    builtin = builtin_dir() / "qnn-htp.toml"
    assert check_profile_file(builtin) == get_profile("qnn-htp", builtin_profiles())


# ---- property tests: any input gives a Profile or a ProfileError -----------------------

_KEYS = sorted({*SECTIONS, *(k for spec in SECTIONS.values() for k in spec), *RECIPE})
_SCALARS = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["cpu", "int8", "static", "fp32", "CPUExecutionProvider", "x86_64"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _toml(value: object) -> str:
    """Inline TOML for any JSON-like value (floats as repr, which TOML reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return "inf" if value == float("inf") else "-inf" if value == float("-inf") else repr(value)


def _load_or_problems(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        profile = load_profile_file(path)
    except ProfileError as exc:
        assert exc.problems and all(p.path == str(path) for p in exc.problems)
        assert str(exc)
    else:
        assert isinstance(profile, Profile) and profile.source == path


_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
def test_any_bytes_give_a_profile_or_a_profile_error(tmp_path: Path, data: bytes) -> None:
    _load_or_problems(tmp_path / "fuzz.toml", data)


@_SETTINGS
@given(st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=6), _VALUES, max_size=6))
def test_any_toml_table_gives_a_profile_or_a_profile_error(tmp_path: Path, table: dict) -> None:
    text = "\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in table.items())
    _load_or_problems(tmp_path / "fuzz.toml", text.encode("utf-8"))


@_SETTINGS
@given(
    st.sampled_from(sorted(EXPECTED_BUILTINS)),
    st.sampled_from(["profile", "match", "runtime", "session", "model", "verify"]),
    st.data(),
)
def test_one_changed_value_gives_a_profile_or_a_profile_error(
    tmp_path: Path, name: str, section: str, data: st.DataObject
) -> None:
    table = profile_to_dict(get_profile(name, builtin_profiles()))
    table["profile"]["name"] = "fuzzed"
    key = data.draw(st.sampled_from(sorted(table[section])))
    table[section][key] = data.draw(_VALUES)
    text = "\n".join(f"{section} = {_toml(value)}" for section, value in table.items())
    _load_or_problems(tmp_path / "fuzz.toml", text.encode("utf-8"))
