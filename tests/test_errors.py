"""The error tree: every class is an EdgeortError with its own exit code, and the CLI
prints one line (no traceback) and exits with that code."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import edgeort
from edgeort import errors
from edgeort.cli import cli, main


def _classes() -> list[type[errors.EdgeortError]]:
    return [
        getattr(errors, n)
        for n in errors.__all__
        if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), Exception)
    ]


def test_every_error_is_an_edgeort_error_with_a_distinct_exit_code() -> None:
    classes = _classes()
    assert all(issubclass(c, errors.EdgeortError) for c in classes)
    codes = [c.exit_code for c in classes]
    assert len(codes) == len(set(codes))
    assert issubclass(errors.IntegrityError, errors.BundleError)
    assert issubclass(errors.SignatureError, errors.IntegrityError)
    assert issubclass(errors.NoVariantError, errors.ProviderError)


def test_every_error_class_is_importable_from_edgeort() -> None:
    for cls in _classes():
        assert getattr(edgeort, cls.__name__) is cls, cls.__name__
        assert cls.__name__ in edgeort.__all__


def test_the_docstring_draws_every_class() -> None:
    doc = errors.__doc__ or ""
    for cls in _classes():
        assert f"{cls.__name__} [{cls.exit_code}]" in doc


def test_errors_carry_their_fields() -> None:
    err = errors.InputError("bad", input_name="x", expected="float32", got="int64")
    assert (err.input_name, err.expected, err.got) == ("x", "float32", "int64")
    problem = errors.Problem("p.toml", "model.precision", "expected one of ...")
    assert str(errors.ProfileError([problem])) == "p.toml: model.precision: expected one of ..."
    assert edgeort.EdgeortError is errors.EdgeortError


def _one_line(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeort: error: "), result.stderr
    assert "Traceback" not in result.output
    assert main(args) == result.exit_code
    return result.exit_code, lines[0]


def test_cli_prints_one_line_and_exits_with_the_class_code(tmp_path: Path) -> None:
    not_a_bundle = tmp_path / "empty.ortpackage"
    not_a_bundle.mkdir()
    code, line = _one_line(["inspect", str(not_a_bundle)])
    assert code == errors.BundleError.exit_code and "empty.ortpackage" in line


def test_bad_arguments_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    code, line = _one_line(["inspect", str(tmp_path / "missing")])
    assert code == 2 and "edgeort inspect --help" in line
    code, line = _one_line(["no-such-command"])
    assert code == 2 and "no-such-command" in line
