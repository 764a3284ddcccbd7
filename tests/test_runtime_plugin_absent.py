"""With the OpenVINO plugin gone, the same bundle and code fall back to the CPU variant and
log one reason. The plugin is hidden for real: a child interpreter whose sitecustomize
makes ``import onnxruntime_ep_openvino`` fail, as it does when the wheel is absent."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fresh import last_json
from tests.test_runtime_support import example_bundle

HIDE = '''
import sys

class _HidePlugin:
    """Makes the OpenVINO plugin module unimportable in this interpreter."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime_ep_openvino":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _HidePlugin())
'''

CHILD = """
import json, logging, sys
import numpy as np
records = []

class Keep(logging.Handler):
    def emit(self, record):
        records.append((record.name, record.levelname, record.getMessage()))

logging.getLogger("edgeort").addHandler(Keep())
logging.getLogger("edgeort").setLevel(logging.INFO)
import edgeort
model = edgeort.load(sys.argv[1])
out = model.run({"image": np.zeros((1, 1, 8, 8), np.float32)})["logits"]
print(json.dumps({
    "variant": model.variant.name,
    "providers": model.providers,
    "reasons": model.reasons,
    "records": [r for r in records if r[0].startswith("edgeort.runtime")],
    "plugin_imported": "onnxruntime_ep_openvino" in sys.modules,
    "shape": list(out.shape),
}))
"""


def run_child(bundle: Path, hide_dir: Path | None) -> dict:
    env = dict(os.environ)
    if hide_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hide_dir), env.get("PYTHONPATH")]))
    return last_json(["-c", CHILD, str(bundle)], env=env)


def test_openvino_uninstalled_falls_back_to_cpu_with_one_reason(tmp_path: Path) -> None:
    bundle = example_bundle(tmp_path, with_qnn=False)
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE)
    result = run_child(bundle, hide)
    assert result["plugin_imported"] is False
    assert result["variant"] == "cpu"
    assert result["providers"] == ["CPUExecutionProvider"]
    assert result["shape"] == [1, 10]
    (record,) = result["records"]
    assert record[2].startswith("variant openvino-cpu skipped")
    assert "onnxruntime_ep_openvino" in record[2]
    assert "not registered" in result["reasons"]["openvino-cpu"]


def test_same_child_without_hiding_sees_the_plugin(tmp_path: Path) -> None:
    """Control: without the sitecustomize the plugin is imported (so hiding is what
    changed the outcome above)."""
    result = run_child(example_bundle(tmp_path, with_qnn=False), None)
    assert result["plugin_imported"] is True
    assert "not registered" not in result["reasons"]["openvino-cpu"]
