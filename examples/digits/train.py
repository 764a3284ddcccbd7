"""Train the digits CNN with numpy only and export it to ONNX, calibration and validation data.

Run from the repository root (about 10-20 s on 2 cores)::

    .venv/bin/python examples/digits/train.py            # (re)writes the committed files
    .venv/bin/python examples/digits/train.py --check    # retrains in a temp dir, compares bytes

Network: Conv(1->8, 3x3, pad 1) + ReLU, Conv(8->16, 3x3, pad 1) + ReLU, MaxPool 2x2,
Flatten, Gemm(256->10). Input "image" float32 [batch, 1, 8, 8] (pixels / 16), output
"logits" float32 [batch, 10]. Training: Adam, softmax cross-entropy, fixed seeds, float64
maths on one BLAS thread so that the same numpy/OpenBLAS build reproduces the files
byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0
EPOCHS = 30
BATCH = 32
LR = 3e-3
N_TEST = 360  # stratified held-out split -> validation.npz
N_CALIB = 200  # stratified subset of the training split -> calibration.npz
OUTPUT_FILES = ("model.onnx", "calibration.npz", "validation.npz")

Params = dict[str, np.ndarray]


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x_train, y_train, x_test, y_test): pixels / 16 as [n, 1, 8, 8] float32."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=N_TEST, stratify=y, random_state=SEED)
    return x_tr, y_tr, x_te, y_te


def calibration_subset(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """N_CALIB samples of the training split, the same number per class, in a fixed order."""
    rng = np.random.default_rng(SEED + 1)
    per_class = N_CALIB // 10
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)]
    )
    return x[np.sort(idx)]


def init_params(rng: np.random.Generator) -> Params:
    """He-initialised weights, ONNX layouts (Conv OIHW, Gemm [out, in] with transB=1)."""

    def he(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)

    return {
        "conv1.w": he((8, 1, 3, 3), 9),
        "conv1.b": np.zeros(8),
        "conv2.w": he((16, 8, 3, 3), 72),
        "conv2.b": np.zeros(16),
        "fc.w": he((10, 256), 256),
        "fc.b": np.zeros(10),
    }


def im2col(x: np.ndarray) -> np.ndarray:
    """[n, c, h, w] -> [n*h*w, c*9] patches of a 3x3 window with zero padding 1."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # n,c,h,w,3,3
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)


def col2im(dcols: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Adjoint of im2col: scatter-add patch gradients back to a [n, c, h, w] tensor."""
    n, c, h, w = shape
    d = dcols.reshape(n, h, w, c, 3, 3)
    dxp = np.zeros((n, c, h + 2, w + 2), dtype=dcols.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i : i + h, j : j + w] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, 1:-1, 1:-1]


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x3 pad-1 convolution; returns (output [n, o, h, w], im2col patches for backward)."""
    n, _, h, wd = x.shape
    cols = im2col(x)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.reshape(n, h, wd, -1).transpose(0, 3, 1, 2), cols


def forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits [n, 10] and the activations backward needs."""
    a1, cols1 = conv(x, p["conv1.w"], p["conv1.b"])
    r1 = np.maximum(a1, 0)
    a2, cols2 = conv(r1, p["conv2.w"], p["conv2.b"])
    r2 = np.maximum(a2, 0)
    n, c, h, w = r2.shape
    pooled = r2.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
    flat = pooled.reshape(n, -1)
    logits = flat @ p["fc.w"].T + p["fc.b"]
    cache = {"x": x, "cols1": cols1, "a1": a1, "r1": r1, "cols2": cols2}
    cache |= {"a2": a2, "r2": r2, "pooled": pooled, "flat": flat}
    return logits, cache


def backward(p: Params, cache: dict[str, np.ndarray], dlogits: np.ndarray) -> Params:
    """Gradients of the loss w.r.t. every parameter, given dloss/dlogits."""
    g: Params = {"fc.w": dlogits.T @ cache["flat"], "fc.b": dlogits.sum(0)}
    dpooled = (dlogits @ p["fc.w"]).reshape(cache["pooled"].shape)
    r2 = cache["r2"]
    n, c, h, w = r2.shape
    blocks = r2.reshape(n, c, h // 2, 2, w // 2, 2)
    is_max = blocks == cache["pooled"][:, :, :, None, :, None]
    dr2 = (is_max * dpooled[:, :, :, None, :, None]).reshape(r2.shape)
    da2 = (dr2 * (cache["a2"] > 0)).transpose(0, 2, 3, 1).reshape(-1, 16)
    g["conv2.w"] = (da2.T @ cache["cols2"]).reshape(p["conv2.w"].shape)
    g["conv2.b"] = da2.sum(0)
    dr1 = col2im(da2 @ p["conv2.w"].reshape(16, -1), cache["r1"].shape)
    da1 = (dr1 * (cache["a1"] > 0)).transpose(0, 2, 3, 1).reshape(-1, 8)
    g["conv1.w"] = (da1.T @ cache["cols1"]).reshape(p["conv1.w"].shape)
    g["conv1.b"] = da1.sum(0)
    return g


def softmax_xent_grad(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient w.r.t. the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-np.log(prob[np.arange(n), y] + 1e-12).mean())
    prob[np.arange(n), y] -= 1.0
    return loss, prob / n


def train(x: np.ndarray, y: np.ndarray) -> Params:
    """Adam on mini-batches; everything float64 and seeded."""
    rng = np.random.default_rng(SEED)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    x64 = x.astype(np.float64)
    step = 0
    for _epoch in range(EPOCHS):
        order = rng.permutation(len(x64))
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            logits, cache = forward(p, x64[idx])
            _, dlogits = softmax_xent_grad(logits, y[idx])
            grads = backward(p, cache, dlogits)
            step += 1
            for k, gk in grads.items():
                m[k] = 0.9 * m[k] + 0.1 * gk
                v[k] = 0.999 * v[k] + 0.001 * gk * gk
                mhat = m[k] / (1 - 0.9**step)
                vhat = v[k] / (1 - 0.999**step)
                p[k] = p[k] - LR * mhat / (np.sqrt(vhat) + 1e-8)
    return {k: val.astype(np.float32) for k, val in p.items()}


def build_onnx(p: Params) -> bytes:
    """The trained network as an opset-17, IR-8 ONNX model (serialised bytes)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(val, name) for name, val in p.items()]
    nodes = [
        helper.make_node("Conv", ["image", "conv1.w", "conv1.b"], ["c1"], "conv1", pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("Conv", ["r1", "conv2.w", "conv2.b"], ["c2"], "conv2", pads=[1] * 4),
        helper.make_node("Relu", ["c2"], ["r2"], "relu2"),
        helper.make_node("MaxPool", ["r2"], ["pool"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], "flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], "fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
        producer_name="edgeort-examples-digits",
        producer_version="1",
        doc_string="8x8 digits CNN trained with numpy (examples/digits/train.py)",
    )
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez, but with fixed zip timestamps so the bytes are reproducible."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)


def ort_accuracy(model_path: Path, validation_path: Path) -> float:
    """Top-1 accuracy of the exported model on validation.npz, measured with onnxruntime."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    with np.load(validation_path) as data:
        logits = sess.run(["logits"], {"image": data["image"]})[0]
        return float((logits.argmax(axis=1) == data["__labels__"]).mean())


def build_all(out_dir: Path) -> float:
    """Train and write model.onnx, calibration.npz, validation.npz; return ORT accuracy."""
    from threadpoolctl import threadpool_limits

    x_tr, y_tr, x_te, y_te = load_split()
    with threadpool_limits(limits=1):
        params = train(x_tr, y_tr)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.onnx").write_bytes(build_onnx(params))
    write_npz(out_dir / "calibration.npz", {"image": calibration_subset(x_tr, y_tr)})
    write_npz(out_dir / "validation.npz", {"image": x_te, "__labels__": y_te})
    return ort_accuracy(out_dir / "model.onnx", out_dir / "validation.npz")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output directory")
    parser.add_argument("--check", action="store_true", help="retrain, compare with --out")
    args = parser.parse_args(argv)
    if not args.check:
        acc = build_all(args.out)
        print(f"wrote {', '.join(OUTPUT_FILES)} to {args.out}; ORT top-1 accuracy {acc:.4f}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        acc = build_all(Path(tmp))
        differ = [f for f in OUTPUT_FILES if _sha256(Path(tmp) / f) != _sha256(args.out / f)]
    print(f"ORT top-1 accuracy {acc:.4f}; differing files: {differ or 'none'}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
