"""Apply one :class:`~edgeort.profiles.Recipe` to a prepared fp32 model.

| recipe | tool |
|---|---|
| fp32 (mode none) | the model as is |
| fp16 | ``onnxruntime.transformers.float16.convert_float_to_float16`` (``keep_io_types``) |
| dynamic int8 | ``quantize_dynamic`` (weights only; MatMuls with constant B) |
| dynamic int8, outliers | :mod:`edgeort.pack.outliers` (calibration), ``quantize_dynamic`` |
| static int8/16 | ``quantize_static`` QDQ or QOperator with a calibration reader |
| qnn (w8a16, w16a16) | ``qnn_preprocess_model`` + ``get_qnn_qdq_config`` + ``quantize`` |
| weight_only int4 | ``MatMulNBitsQuantizer`` on MatMuls with large constant weights |

Every quantizer failure becomes a :class:`PackageError` naming the recipe.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import onnx
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize,
    quantize_dynamic,
    quantize_static,
)

from edgeort._fs import scratch_cwd
from edgeort.errors import PackageError
from edgeort.pack.data import Dataset, DatasetReader
from edgeort.pack.load import save_model
from edgeort.profiles import Recipe

__all__ = [
    "CALIBRATION_LIMIT",
    "MIN_NBITS_K",
    "Built",
    "apply_recipe",
    "describe",
    "large_matmuls",
    "needs_calibration",
    "op_types_to_quantize",
]

log = logging.getLogger(__name__)

CALIBRATION_LIMIT = 256  # calibration samples used at most
MIN_NBITS_K = 128  # 4-bit: MatMul weights need K >= max(this, block_size) ...
MIN_NBITS_N = 16  # ... and at least this many output columns

_QTYPES = {
    "int8": QuantType.QInt8,
    "uint8": QuantType.QUInt8,
    "int16": QuantType.QInt16,
    "uint16": QuantType.QUInt16,
    "int4": QuantType.QInt4,
    "uint4": QuantType.QUInt4,
}
_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}


@dataclass(frozen=True, slots=True)
class Built:
    """A model file built from a recipe. ``precision`` is what the file really holds
    (an int4 recipe with no large MatMul stays fp32); ``notes`` say why."""

    path: Path
    precision: str
    notes: tuple[str, ...] = ()


def needs_calibration(recipe: Recipe) -> bool:
    return recipe.mode in ("static", "qnn")


def describe(recipe: Recipe) -> str:
    if recipe.mode == "none":
        return recipe.precision
    extra = ", per-channel" if recipe.per_channel else ""
    if recipe.op_types:
        extra += f", {'/'.join(recipe.op_types)} only"
    if recipe.float_op_types:
        extra += f", {'/'.join(recipe.float_op_types)} float"
    if recipe.mode in ("static", "qnn"):
        extra += f", {recipe.format}, {recipe.calibrate_method}"
    if recipe.outliers:
        extra += ", outlier channels float"
    return f"{recipe.precision} {recipe.mode}{extra}"


def apply_recipe(
    model: Path,
    recipe: Recipe,
    out: Path,
    calibration: Dataset | None = None,
    *,
    keep_head_float: bool = False,
) -> Built:
    """Build ``out`` from the fp32 ``model`` following ``recipe``. ``keep_head_float``
    (detectors): the decode tail and the last Conv of each branch
    (:func:`edgeort.pack.family.head_nodes`) join ``nodes_to_exclude``."""
    if needs_calibration(recipe) and calibration is None:
        raise PackageError(f"recipe {describe(recipe)} needs calibration data (--calibration)")
    head: list[str] = []
    if keep_head_float and recipe.mode in ("static", "qnn", "dynamic"):
        from edgeort.pack.family import head_nodes

        head = head_nodes(onnx.load_model(str(model), load_external_data=False))
        recipe = replace(recipe, nodes_to_exclude=(*recipe.nodes_to_exclude, *head))
    outlier_notes: tuple[str, ...] = ()
    if recipe.outliers and recipe.mode == "dynamic":
        model, recipe, outlier_notes = _outliers(model, recipe, out, calibration)
    try:
        if recipe.mode == "none" and recipe.precision == "fp32":
            shutil.copyfile(model, out)
            return Built(out, "fp32")
        if recipe.precision == "fp16":
            return _fp16(model, recipe, out)
        if recipe.mode == "dynamic":
            _dynamic(model, recipe, out)
        elif recipe.mode == "static":
            _static(model, recipe, out, calibration)
        elif recipe.mode == "qnn":
            _qnn(model, recipe, out, calibration)
        elif recipe.mode == "weight_only":
            return _nbits(model, recipe, out)
        else:
            raise PackageError(f"recipe mode {recipe.mode!r} is not one edgeort knows")
    except PackageError:
        raise
    except Exception as exc:  # quantizers raise anything; name the recipe
        raise PackageError(
            f"recipe {describe(recipe)} failed: {type(exc).__name__}: {exc}"
        ) from exc
    notes = (f"{len(head)} detection-head node(s) kept float",) if head else ()
    return Built(out, recipe.precision, (*notes, *outlier_notes))


def _outliers(
    model: Path, recipe: Recipe, out: Path, calibration: Dataset | None
) -> tuple[Path, Recipe, tuple[str, ...]]:
    """The model with its outlying input channels kept float (:mod:`edgeort.pack.outliers`)
    and the recipe leaving the float side nodes alone."""
    if calibration is None:
        return model, recipe, ("outliers: no calibration data, not applied",)
    from edgeort.pack import outliers

    try:
        done = outliers.rewrite(
            model, out.with_name(out.stem + ".outliers.onnx"), calibration,
            exclude=recipe.nodes_to_exclude, op_types=recipe.op_types,
        )  # fmt: skip
    except Exception as exc:  # ORT refusing the measuring graph: plain dynamic, said why
        log.info("outlier rewrite failed: %s", exc)
        return model, recipe, (f"outliers: not applied ({type(exc).__name__}: {exc})"[:300],)
    recipe = replace(recipe, nodes_to_exclude=(*recipe.nodes_to_exclude, *done.float_nodes))
    return done.path, recipe, done.notes


def _fp16(model: Path, recipe: Recipe, out: Path) -> Built:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = onnx.load_model(str(model))
    converted = convert_float_to_float16(
        proto,
        keep_io_types=recipe.keep_io_types,
        node_block_list=list(recipe.nodes_to_exclude) or None,
    )
    onnx.save_model(converted, str(out))
    io = "inputs/outputs kept fp32" if recipe.keep_io_types else "inputs/outputs fp16"
    return Built(out, "fp16", (io,))


def op_types_to_quantize(recipe: Recipe, present: set[str] | None = None) -> list[str] | None:
    """The recipe's op types, less its ``float_op_types``; with no ``op_types`` the
    quantizer's own default set (what ``quantize_static``/``quantize_dynamic`` take for
    None; for ``qnn``, every op type ``present`` in the model) less them. None: the
    quantizer's default."""
    if not recipe.float_op_types:
        return list(recipe.op_types) or None
    from onnxruntime.quantization.registry import (
        IntegerOpsRegistry,
        QDQRegistry,
        QLinearOpsRegistry,
    )

    if recipe.op_types:
        ops = set(recipe.op_types)
    elif recipe.mode == "qnn" and present is not None:
        ops = set(present)
    elif recipe.mode == "dynamic":
        ops = set(IntegerOpsRegistry)
    elif recipe.format == "qoperator":
        ops = set(QLinearOpsRegistry)
    else:  # QDQ (static, qnn): quantize_static's default for QDQ
        ops = set(QLinearOpsRegistry) | set(QDQRegistry)
    return sorted(ops - set(recipe.float_op_types))


def _common(recipe: Recipe) -> dict[str, Any]:
    return {
        "op_types_to_quantize": op_types_to_quantize(recipe),
        "per_channel": recipe.per_channel,
        "nodes_to_exclude": list(recipe.nodes_to_exclude) or None,
    }


def _dynamic(model: Path, recipe: Recipe, out: Path) -> None:
    quantize_dynamic(
        str(model),
        str(out),
        reduce_range=recipe.reduce_range,
        weight_type=_QTYPES[recipe.weight_type],
        extra_options={"MatMulConstBOnly": True, "WeightSymmetric": recipe.symmetric_weights},
        **_common(recipe),
    )


def _static(model: Path, recipe: Recipe, out: Path, data: Dataset | None) -> None:
    assert data is not None
    quantize_static(
        str(model),
        str(out),
        DatasetReader(data, CALIBRATION_LIMIT),
        quant_format=QuantFormat.QOperator if recipe.format == "qoperator" else QuantFormat.QDQ,
        reduce_range=recipe.reduce_range,
        activation_type=_QTYPES[recipe.activation_type],
        weight_type=_QTYPES[recipe.weight_type],
        calibrate_method=_METHODS[recipe.calibrate_method],
        extra_options={
            "ActivationSymmetric": recipe.symmetric_activations,
            "WeightSymmetric": recipe.symmetric_weights,
        },
        **_common(recipe),
    )


def _qnn(model: Path, recipe: Recipe, out: Path, data: Dataset | None) -> None:
    from onnxruntime.quantization.execution_providers.qnn import (
        get_qnn_qdq_config,
        qnn_preprocess_model,
    )

    assert data is not None
    pre = out.with_name(out.stem + ".qnnpre.onnx")
    model, meta = _without_metadata(model, out.with_name(out.stem + ".nometa.onnx"))
    with scratch_cwd(pre.parent):
        preprocessed = qnn_preprocess_model(str(Path(model).resolve()), str(Path(pre).resolve()))
    source = pre if preprocessed else model
    config = get_qnn_qdq_config(
        str(source),
        DatasetReader(data, CALIBRATION_LIMIT),
        calibrate_method=_METHODS[recipe.calibrate_method],
        activation_type=_QTYPES[recipe.activation_type],
        weight_type=_QTYPES[recipe.weight_type],
        per_channel=recipe.per_channel,
        activation_symmetric=recipe.symmetric_activations,
        op_types_to_quantize=op_types_to_quantize(recipe, _op_types(source)),
        nodes_to_exclude=list(recipe.nodes_to_exclude) or None,
    )
    quantize(str(source), str(out), config)
    pre.unlink(missing_ok=True)
    if meta:
        built = onnx.load_model(str(out))
        onnx.helper.set_model_props(built, {**dict(meta), **_props(built)})
        onnx.save_model(built, str(out))


def _op_types(model: Path) -> set[str]:
    proto = onnx.load_model(str(model), load_external_data=False)
    return {n.op_type for n in proto.graph.node}


def _props(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def _without_metadata(model: Path, scratch: Path) -> tuple[Path, dict[str, str]]:
    """``qnn_preprocess_model`` fails on a model with ``metadata_props`` (onnxruntime
    1.2x calls ``dict.update`` on the protobuf list; YOLO exports carry class names
    there): a copy at ``scratch`` without them, and the props, to be put back on the
    quantized model."""
    proto = onnx.load_model(str(model))
    meta = _props(proto)
    if not meta:
        return model, meta
    del proto.metadata_props[:]
    save_model(proto, scratch)
    return scratch, meta


def large_matmuls(model: onnx.ModelProto, block_size: int) -> list[str]:
    """Names of MatMul nodes whose B is a 2-D initializer with K >= max(MIN_NBITS_K,
    block_size) and N >= MIN_NBITS_N: the ones worth 4-bit weights."""
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    k_min = max(MIN_NBITS_K, block_size)
    names = []
    for node in model.graph.node:
        dims = shapes.get(node.input[1]) if node.op_type == "MatMul" else None
        if dims and len(dims) == 2 and dims[0] >= k_min and dims[1] >= MIN_NBITS_N:
            names.append(node.name)
    return names


def _nbits(model: Path, recipe: Recipe, out: Path) -> Built:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    proto = onnx.load_model(str(model))
    chosen = [
        n for n in large_matmuls(proto, recipe.block_size) if n not in recipe.nodes_to_exclude
    ]
    if not chosen:
        shutil.copyfile(model, out)
        why = (
            f"no MatMul has a constant weight with K >= {max(MIN_NBITS_K, recipe.block_size)} "
            f"and N >= {MIN_NBITS_N}; the variant stays fp32"
        )
        return Built(out, "fp32", (why,))
    quantizer = MatMulNBitsQuantizer(
        proto,
        bits=recipe.bits,
        block_size=recipe.block_size,
        is_symmetric=recipe.symmetric_weights,
        # nodes_to_include only adds to op_types_to_quantize: exclude the rest instead.
        nodes_to_exclude=[n.name for n in proto.graph.node if n.name not in chosen],
        op_types_to_quantize=("MatMul",),
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(out), use_external_data_format=False)
    return Built(
        out, recipe.precision, (f"{len(chosen)} MatMul(s) with {recipe.bits}-bit weights",)
    )
