"""Tokenise benchmarks/data/sentences.txt into .npz inputs for the exported MiniLM model.

Needs `tokenizers` (PyPI) and the tokenizer.json that export_minilm.py copies next to the
model. Writes, into --out (default benchmarks/models/minilm/):

- sentences.npz    every sentence
- calibration.npz  the first --calibration sentences (default 100)
- validation.npz   the rest

Each file holds input_ids, attention_mask and token_type_ids, int64 [samples, seq], one
array per model input (edgeort's data convention), every file padded with [PAD] (id 0,
mask 0) to the same length: the longest tokenised sentence, or --seq if given.

    python benchmarks/minilm_inputs.py [--model-dir DIR] [--seq 64] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SENTENCES = HERE / "data" / "sentences.txt"
MODEL_DIR = HERE / "models" / "minilm"
MAX_LENGTH = 128  # the tokenizer.json truncation length shipped with the model
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def load_sentences(path: Path = SENTENCES) -> list[str]:
    """Non-empty, stripped lines of a UTF-8 text file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def tokenize(
    sentences: list[str], tokenizer_json: Path, *, seq: int | None = None
) -> dict[str, np.ndarray]:
    """BERT-tokenise (with [CLS]/[SEP]) and right-pad to `seq` or to the longest sentence."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=seq or MAX_LENGTH)
    encodings = tokenizer.encode_batch(sentences)
    length = seq or max(len(e.ids) for e in encodings)
    arrays = {name: np.zeros((len(sentences), length), dtype=np.int64) for name in INPUT_NAMES}
    for row, enc in enumerate(encodings):
        n = len(enc.ids)
        arrays["input_ids"][row, :n] = enc.ids
        arrays["attention_mask"][row, :n] = enc.attention_mask
        arrays["token_type_ids"][row, :n] = enc.type_ids
    return arrays


def write_inputs(
    out_dir: Path, arrays: dict[str, np.ndarray], *, calibration: int = 100
) -> list[Path]:
    """Write sentences.npz, calibration.npz (first rows) and validation.npz (the rest)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = {
        "sentences.npz": slice(None),
        "calibration.npz": slice(None, calibration),
        "validation.npz": slice(calibration, None),
    }
    paths = []
    for name, rows in splits.items():
        path = out_dir / name
        np.savez(path, **{k: v[rows] for k, v in arrays.items()})
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR, help="has tokenizer.json")
    parser.add_argument("--sentences", type=Path, default=SENTENCES)
    parser.add_argument("--seq", type=int, default=None, help="fixed length (default: longest)")
    parser.add_argument("--calibration", type=int, default=100, help="sentences for calibration")
    parser.add_argument("--out", type=Path, default=None, help="default: --model-dir")
    args = parser.parse_args(argv)
    sentences = load_sentences(args.sentences)
    arrays = tokenize(sentences, args.model_dir / "tokenizer.json", seq=args.seq)
    paths = write_inputs(args.out or args.model_dir, arrays, calibration=args.calibration)
    shape = arrays["input_ids"].shape
    print(f"{len(sentences)} sentences -> {shape} int64; wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
