"""Target runtimes: isolated environments with one ONNX Runtime build and version each,
where variants are verified and measured through a worker process (docs/runtimes.md).

Devices rarely run the packaging host's ORT: they run another build
(``onnxruntime-openvino``, ``onnxruntime-qnn``, ``onnxruntime-gpu``) or an older version.
A runtime reproduces that environment here; :mod:`edgeort.runtimes.worker` is the one
protocol that runs a bundle in it with :func:`edgeort.load`, exactly as on a device.

Importing this package is light (stdlib only); the worker side imports edgeort's light
runtime, never ``onnx`` or ``click``.
"""

from __future__ import annotations

from edgeort.runtimes.env import (
    BUILTIN_RECIPES,
    LIGHT_REQUIREMENTS,
    Recipe,
    Runtime,
    add,
    get,
    health,
    list_runtimes,
    recipe_for_ep,
    remove,
    runtimes_dir,
    sync_edgeort,
)

__all__ = [
    "BUILTIN_RECIPES",
    "LIGHT_REQUIREMENTS",
    "Recipe",
    "Runtime",
    "add",
    "get",
    "health",
    "list_runtimes",
    "recipe_for_ep",
    "remove",
    "runtimes_dir",
    "sync_edgeort",
]
