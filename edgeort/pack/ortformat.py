"""ORT format (``.ort``) for profiles with ``model.ort_format`` (NNAPI, CoreML).

The same as ``python -m onnxruntime.tools.convert_onnx_models_to_ort
--optimization_style Runtime --target_platform arm`` (without its prints): a session
saves the model in ORT format with runtime optimizations recorded for replay, at a
portable level (never the x86-only NCHWc layout), and the reduced-operator config
(``required_operators.with_runtime_opt.config``, the input of a minimal ORT build's
``--include_ops_by_config``) is made from the model with and without those
optimizations, as the tool does.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from edgeort.errors import PackageError
from edgeort.hardware.ep import LEVELS, cpu_session

__all__ = ["CONFIG_NAME", "OrtFormat", "convert_to_ort"]

log = logging.getLogger(__name__)

CONFIG_NAME = "required_operators.with_runtime_opt.config"


@dataclass(frozen=True, slots=True)
class OrtFormat:
    model: Path  # the .ort file
    config: Path  # the reduced-operator config


def _save(model: Path, out: Path, level: str, minimal: str, *, arm: bool) -> None:
    so = ort.SessionOptions()
    so.graph_optimization_level = LEVELS.get(level, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
    so.optimized_model_filepath = str(out)
    so.log_severity_level = 3
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.add_session_config_entry("session.qdqisint8allowed", "1" if arm else "0")
    so.add_session_config_entry("optimization.minimal_build_optimizations", minimal)
    cpu_session(model, so, disabled_optimizers=["NchwcTransformer"])


def convert_to_ort(
    model: Path, out_dir: Path, *, level: str = "basic", arm: bool = True
) -> OrtFormat:
    """Write ``<model stem>.ort`` and the operator config into ``out_dir``."""
    from onnxruntime.tools.ort_format_model import create_config_from_models

    logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)  # no INFO chatter
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / (model.stem + ".ort")
    config = out_dir / CONFIG_NAME
    try:
        _save(model, target, level, "save", arm=arm)
        with tempfile.TemporaryDirectory(prefix="edgeort-ort-") as tmp:
            plain = Path(tmp) / (model.stem + ".ort")
            _save(model, plain, level, "apply", arm=arm)
            with warnings.catch_warnings():
                # ORT's OrtFormatModelProcessor reads with open(path).read() and leaves the
                # file to the garbage collector (a ResourceWarning, nothing leaks for long).
                warnings.simplefilter("ignore", ResourceWarning)
                create_config_from_models([target, plain], config, False)
        _strip_paths(config, target.name)
    except Exception as exc:  # ORT's own types; name the step
        raise PackageError(
            f"ORT format conversion of {model.name} failed: {exc}", path=model
        ) from None
    return OrtFormat(target, config)


def _strip_paths(config: Path, name: str) -> None:
    """The tool lists the (temporary) model paths; keep only the shipped file's name."""
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith("#")]
    header = [f"# Generated from model: {name} (runtime optimizations saved and applied)"]
    config.write_text("\n".join(header + lines).rstrip() + "\n")
