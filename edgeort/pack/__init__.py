"""The packager (build side): one ONNX model -> one verified multi-variant bundle.

``package(model, targets, output=...)`` runs, per target profile: load and check,
prepare (fixed shapes, ``quant_pre_process``), optimize (transformer fusion, portable
offline optimization), precision (the profile's recipes), ORT format where asked,
verify against fp32 with the accuracy gate and fallbacks, the speed gate where the EP
is present, and writes the bundle atomically. Progress goes to ``on_event``.

This package is the one place (with :mod:`edgeort.measure` and :mod:`edgeort.cli`) that
imports ``onnx``, ``onnxruntime.quantization`` and ``onnxruntime.transformers``.
"""

from __future__ import annotations

from edgeort.pack.events import Event
from edgeort.pack.pipeline import package
from edgeort.pack.result import PackageResult, VariantResult

__all__ = ["Event", "PackageResult", "VariantResult", "package"]
