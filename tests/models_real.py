"""Small models shaped like the real models that broke packaging (issue "Real models"),
built with onnx.helper: symbolic-expression output dims (a detector exported with dynamic
H/W), an opset-11 CNN, a streaming voice-activity model (0-d int64 input, a state fed
back, ``If`` subgraphs) and a detector-like head (conv backbone, decode tail).

Weights are deterministic (``default_rng(seed)``). Import as
``from tests.models_real import make_vad_like``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.models import _init, _save, make_cnn


def stride_expr(dim: str, times: int) -> str:
    """The expression shape inference writes for ``times`` stride-2 3x3 convs (pad 1)."""
    text = dim
    for _ in range(times):
        text = f"floor({text}/2 - 1/2) + 1" if text == dim else f"floor(({text})/2 - 1/2) + 1"
    return f"({text})"


def make_expr_dims(dir: Path | str, *, seed: int = 0, filename: str = "expr_dims.onnx") -> Path:
    """image float32 [1, 3, height, width] -> three stride-2 Conv+Relu levels, each
    flattened to [1, 8, h*w] and concatenated: ``feat`` [1, 8, <expression>]. The output
    dim is the long symbolic expression a YOLO export carries (over 256 characters)."""
    rng = np.random.default_rng(seed)
    inits, nodes, flats = [], [], []
    inits.append(_init("flat_shape", [1, 8, -1], np.int64))
    prev, channels = "image", 3
    terms = []
    for level in range(1, 4):
        inits += [
            _init(f"c{level}.w", rng.standard_normal((8, channels, 3, 3)) * 0.3),
            _init(f"c{level}.b", rng.standard_normal(8) * 0.1),
        ]
        nodes += [
            helper.make_node(
                "Conv", [prev, f"c{level}.w", f"c{level}.b"], [f"a{level}"], f"conv{level}",
                pads=[1] * 4, strides=[2, 2],
            ),
            helper.make_node("Relu", [f"a{level}"], [f"r{level}"], f"relu{level}"),
            helper.make_node("Reshape", [f"r{level}", "flat_shape"], [f"f{level}"], f"flat{level}"),
        ]  # fmt: skip
        flats.append(f"f{level}")
        terms.append(f"{stride_expr('height', level)}*{stride_expr('width', level)}")
        prev, channels = f"r{level}", 8
    nodes.append(helper.make_node("Concat", flats, ["feat"], "concat", axis=2))
    expression = " + ".join(terms)
    graph = helper.make_graph(
        nodes, "expr_dims",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("feat", TensorProto.FLOAT, [1, 8, expression])],
        inits,
    )  # fmt: skip
    return _save(dir, filename, graph, opset=17, ir=8)


def make_opset11_cnn(
    dir: Path | str, *, size: int = 16, classes: int = 10, seed: int = 0,
    filename: str = "cnn_opset11.onnx",
) -> Path:  # fmt: skip
    """A Paddle-era CNN at opset 11 (IR 6): image [1, 3, size, size] -> 2x(Conv+Relu),
    GlobalAveragePool, Flatten, Gemm -> logits [1, classes] (:func:`tests.models.make_cnn`,
    both convs stride 1)."""
    return make_cnn(
        dir, size=size, classes=classes, batch=1, seed=seed, filename=filename,
        stride=1, opset=11, ir=6,
    )  # fmt: skip


VAD_CHUNK = 64
VAD_STATE = (2, 1, 16)


def _branch(name: str, weight: np.ndarray) -> onnx.GraphProto:
    """``If`` branch: the chunk (outer-scope ``input``) projected by its own weight."""
    return helper.make_graph(
        [helper.make_node("MatMul", ["input", f"{name}.w"], [f"{name}.out"], f"{name}_mm"),
         helper.make_node("Tanh", [f"{name}.out"], [f"{name}.y"], f"{name}_tanh")],
        name,
        [],
        [helper.make_tensor_value_info(f"{name}.y", TensorProto.FLOAT, [1, 32])],
        [_init(f"{name}.w", weight)],
    )  # fmt: skip


def make_vad_like(dir: Path | str, *, seed: int = 0, filename: str = "vad.onnx") -> Path:
    """A streaming voice-activity model like silero-vad.

    Inputs: ``input`` float32 [1, 64] (one audio chunk), ``state`` float32 [2, 1, 16]
    and ``sr`` int64 0-d (the sample rate: 16000 or 8000). An ``If`` on ``sr == 16000``
    picks one of two projections (each a MatMul inside the subgraph). Outputs:
    ``output`` float32 [1, 1] (speech probability) and ``stateN`` float32 [2, 1, 16],
    fed back as ``state`` on the next chunk."""
    rng = np.random.default_rng(seed)
    n_state = int(np.prod(VAD_STATE))
    inits = [
        _init("sr16k", np.array(16000, dtype=np.int64), np.int64),
        _init("state_flat_shape", [1, n_state], np.int64),
        _init("state_shape", list(VAD_STATE), np.int64),
        _init("rec.w", rng.standard_normal((n_state, 32)) * 0.3),
        _init("mix.w", rng.standard_normal((32, n_state)) * 0.3),
        _init("mix.b", rng.standard_normal(n_state) * 0.1),
        _init("out.w", rng.standard_normal((n_state, 1)) * 0.3),
        _init("out.b", rng.standard_normal(1) * 0.1),
    ]
    then_g = _branch("k16", rng.standard_normal((VAD_CHUNK, 32)) * 0.2)
    else_g = _branch("k8", rng.standard_normal((VAD_CHUNK, 32)) * 0.2)
    nodes = [
        helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], "is16k"),
        helper.make_node("If", ["is16k"], ["feat"], "rate_branch", then_branch=then_g,
                         else_branch=else_g),
        helper.make_node("Reshape", ["state", "state_flat_shape"], ["s_flat"], "state_flat"),
        helper.make_node("MatMul", ["s_flat", "rec.w"], ["s_proj"], "rec_mm"),
        helper.make_node("Add", ["feat", "s_proj"], ["pre"], "mix_in"),
        helper.make_node("MatMul", ["pre", "mix.w"], ["mixed"], "mix_mm"),
        helper.make_node("Add", ["mixed", "mix.b"], ["mixed_b"], "mix_bias"),
        helper.make_node("Tanh", ["mixed_b"], ["h"], "mix_tanh"),
        helper.make_node("Reshape", ["h", "state_shape"], ["stateN"], "state_out"),
        helper.make_node("MatMul", ["h", "out.w"], ["logit"], "out_mm"),
        helper.make_node("Add", ["logit", "out.b"], ["logit_b"], "out_bias"),
        helper.make_node("Sigmoid", ["logit_b"], ["output"], "prob"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "vad",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, VAD_CHUNK]),
         helper.make_tensor_value_info("state", TensorProto.FLOAT, list(VAD_STATE)),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1]),
         helper.make_tensor_value_info("stateN", TensorProto.FLOAT, list(VAD_STATE))],
        inits,
    )  # fmt: skip
    return _save(dir, filename, graph, opset=17, ir=8)


def make_detector_head(
    dir: Path | str, *, size: int = 32, classes: int = 3, seed: int = 0,
    filename: str = "detector.onnx",
) -> Path:  # fmt: skip
    """A YOLO-like detector: image [1, 3, size, size] -> Conv backbone (two stride-2
    Conv+Relu) -> head Conv to 4 + classes channels -> Reshape [1, 4+classes, N] ->
    decode tail: Split into boxes and scores, boxes * stride + grid offset, Sigmoid on
    scores, Concat -> ``detections`` [1, 4+classes, N] (N = (size/4)^2)."""
    rng = np.random.default_rng(seed)
    cells = (size // 4) ** 2
    grid = np.tile(np.arange(cells, dtype=np.float32) % (size // 4), (4, 1))[None] * 4.0
    inits = [
        _init("b1.w", rng.standard_normal((8, 3, 3, 3)) * 0.3),
        _init("b1.b", rng.standard_normal(8) * 0.1),
        _init("b2.w", rng.standard_normal((16, 8, 3, 3)) * 0.2),
        _init("b2.b", rng.standard_normal(16) * 0.1),
        _init("head.w", rng.standard_normal((4 + classes, 16, 1, 1)) * 0.3),
        _init("head.b", rng.standard_normal(4 + classes) * 0.1),
        _init("flat_shape", [1, 4 + classes, cells], np.int64),
        _init("split", [4, classes], np.int64),
        _init("stride", [4.0]),
        _init("grid", grid),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "b1.w", "b1.b"], ["a1"], "backbone_conv1",
                         pads=[1] * 4, strides=[2, 2]),
        helper.make_node("Relu", ["a1"], ["r1"], "backbone_relu1"),
        helper.make_node("Conv", ["r1", "b2.w", "b2.b"], ["a2"], "backbone_conv2",
                         pads=[1] * 4, strides=[2, 2]),
        helper.make_node("Relu", ["a2"], ["r2"], "backbone_relu2"),
        helper.make_node("Conv", ["r2", "head.w", "head.b"], ["raw"], "head_conv"),
        helper.make_node("Reshape", ["raw", "flat_shape"], ["flat"], "head_flat"),
        helper.make_node("Split", ["flat", "split"], ["box_raw", "cls_raw"], "decode_split",
                         axis=1),
        helper.make_node("Mul", ["box_raw", "stride"], ["box_scaled"], "decode_scale"),
        helper.make_node("Add", ["box_scaled", "grid"], ["boxes"], "decode_grid"),
        helper.make_node("Sigmoid", ["cls_raw"], ["scores"], "decode_sigmoid"),
        helper.make_node("Concat", ["boxes", "scores"], ["detections"], "decode_concat",
                         axis=1),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT,
                                       [1, 4 + classes, cells])],
        inits,
    )  # fmt: skip
    return _save(dir, filename, graph, opset=17, ir=8)


def make_scan_rnn(dir: Path | str, *, seed: int = 0, filename: str = "scan_rnn.onnx") -> Path:
    """An RNN written with ``Scan``: ``x`` float32 [1, time, 8] and the state ``h``
    [1, 16] -> ``y`` [1, time, 16] (every step's state) and ``hn`` [1, 16] (the last),
    fed back as ``h`` on the next call. The step is tanh(x_t U + h W + b), with U, W
    and b inside the Scan body."""
    rng = np.random.default_rng(seed)
    body = helper.make_graph(
        [helper.make_node("MatMul", ["x_t", "U"], ["xu"], "step_xu"),
         helper.make_node("MatMul", ["h_prev", "W"], ["hw"], "step_hw"),
         helper.make_node("Add", ["xu", "hw"], ["s"], "step_add"),
         helper.make_node("Add", ["s", "bias"], ["sb"], "step_bias"),
         helper.make_node("Tanh", ["sb"], ["h_next"], "step_tanh"),
         helper.make_node("Identity", ["h_next"], ["y_t"], "step_out")],
        "step",
        [helper.make_tensor_value_info("h_prev", TensorProto.FLOAT, [1, 16]),
         helper.make_tensor_value_info("x_t", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("h_next", TensorProto.FLOAT, [1, 16]),
         helper.make_tensor_value_info("y_t", TensorProto.FLOAT, [1, 16])],
        [_init("U", rng.standard_normal((8, 16)) * 0.4),
         _init("W", rng.standard_normal((16, 16)) * 0.3),
         _init("bias", rng.standard_normal(16) * 0.1)],
    )  # fmt: skip
    node = helper.make_node(
        "Scan", ["h", "x"], ["hn", "y"], "rnn", body=body, num_scan_inputs=1,
        scan_input_axes=[1], scan_output_axes=[1],
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "scan_rnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "time", 8]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "time", 16]),
         helper.make_tensor_value_info("hn", TensorProto.FLOAT, [1, 16])],
    )  # fmt: skip
    return _save(dir, filename, graph, opset=17, ir=8)


def make_rate_switch(dir: Path | str, *, seed: int = 0, filename: str = "rate_switch.onnx") -> Path:
    """Like silero-vad's 16 kHz / 8 kHz switch: ``input`` float32 [1, n] and ``sr`` int64
    0-d; an ``If`` on ``sr == 16000`` runs a MatMul path (then) or a path that first views
    the chunk as [1, 3, n/3] (else: sizes the 8 kHz model is used at). Fixing n to 64
    makes that else branch fail ONNX Runtime's shape inference (64 is no multiple of 3)
    although the model never takes it at 16 kHz. Output ``output`` float32 [1, 8]."""
    rng = np.random.default_rng(seed)
    then_g = helper.make_graph(
        [helper.make_node("MatMul", ["input", "k16.w"], ["k16.y"], "k16_mm")],
        "k16", [], [helper.make_tensor_value_info("k16.y", TensorProto.FLOAT, [1, 8])],
        [_init("k16.w", rng.standard_normal((64, 8)) * 0.2)],
    )  # fmt: skip
    else_g = helper.make_graph(
        [helper.make_node("Reshape", ["input", "k8.thirds"], ["k8.v"], "k8_view"),
         helper.make_node("ReduceMean", ["k8.v"], ["k8.m"], "k8_mean", axes=[2], keepdims=0),
         helper.make_node("MatMul", ["k8.m", "k8.w"], ["k8.y"], "k8_mm")],
        "k8", [], [helper.make_tensor_value_info("k8.y", TensorProto.FLOAT, [1, 8])],
        [_init("k8.thirds", [1, 3, -1], np.int64), _init("k8.w", rng.standard_normal((3, 8)))],
    )  # fmt: skip
    nodes = [
        helper.make_node("Equal", ["sr", "sr16k"], ["is16k"], "is16k"),
        helper.make_node("If", ["is16k"], ["output"], "rate_branch", then_branch=then_g,
                         else_branch=else_g),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "rate_switch",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, "n"]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8])],
        [_init("sr16k", np.array(16000, dtype=np.int64), np.int64)],
    )  # fmt: skip
    return _save(dir, filename, graph, opset=17, ir=8)
