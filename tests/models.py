"""Small ONNX models for tests, built with onnx.helper; every builder saves into `dir`.

Weights are deterministic (numpy `default_rng(seed)`), so a builder called twice with the
same arguments writes the same bytes. Import as ``from tests.models import make_mlp``.

Builders return the saved `Path`; `corrupt_model_bytes` writes a broken model and returns it.
One module on purpose (over the usual ~350 lines): other tests import every builder from here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8

Dim = int | str


def _init(
    name: str, value: np.ndarray | list[float] | list[int] | float, dtype: type = np.float32
) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _value(name: str, elem: int, shape: list[Dim]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _save(
    directory: Path | str,
    filename: str,
    graph: onnx.GraphProto,
    *,
    producer: str = "edgeort-tests",
    opset: int = OPSET,
    ir: int = IR_VERSION,
) -> Path:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=ir,
        producer_name=producer,
    )
    onnx.checker.check_model(model, full_check=True)
    path = Path(directory) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_mlp(
    dir: Path | str,
    *,
    inputs: int = 16,
    hidden: int = 32,
    outputs: int = 4,
    batch: Dim = "batch",
    seed: int = 0,
    filename: str = "mlp.onnx",
) -> Path:
    """MLP: x float32 [batch, inputs] -> MatMul+Add+Relu -> MatMul+Add -> y [batch, outputs]."""
    rng = np.random.default_rng(seed)
    inits = [
        _init("w1", rng.standard_normal((inputs, hidden)) * 0.3),
        _init("b1", rng.standard_normal(hidden) * 0.1),
        _init("w2", rng.standard_normal((hidden, outputs)) * 0.3),
        _init("b2", rng.standard_normal(outputs) * 0.1),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], "fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], "fc1_bias"),
        helper.make_node("Relu", ["h1"], ["h2"], "relu"),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"], "fc2"),
        helper.make_node("Add", ["h3", "b2"], ["y"], "fc2_bias"),
    ]
    graph = helper.make_graph(
        nodes, "mlp", [_value("x", TensorProto.FLOAT, [batch, inputs])],
        [_value("y", TensorProto.FLOAT, [batch, outputs])], inits,
    )  # fmt: skip
    return _save(dir, filename, graph)


def make_cnn(
    dir: Path | str,
    *,
    channels: int = 3,
    size: int = 16,
    classes: int = 10,
    batch: Dim = "batch",
    seed: int = 0,
    filename: str = "cnn.onnx",
    stride: int = 2,
    opset: int = OPSET,
    ir: int = IR_VERSION,
) -> Path:
    """CNN: image float32 [batch, channels, size, size] -> 2x(Conv+Relu), GAP, Gemm -> logits.
    ``stride``: the second conv's; ``opset``/``ir``: the file's opset and IR version."""
    rng = np.random.default_rng(seed)
    inits = [
        _init("c1.w", rng.standard_normal((8, channels, 3, 3)) * 0.3),
        _init("c1.b", rng.standard_normal(8) * 0.1),
        _init("c2.w", rng.standard_normal((16, 8, 3, 3)) * 0.2),
        _init("c2.b", rng.standard_normal(16) * 0.1),
        _init("fc.w", rng.standard_normal((classes, 16)) * 0.3),
        _init("fc.b", rng.standard_normal(classes) * 0.1),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "c1.w", "c1.b"], ["a1"], "conv1", pads=[1] * 4),
        helper.make_node("Relu", ["a1"], ["r1"], "relu1"),
        helper.make_node(
            "Conv", ["r1", "c2.w", "c2.b"], ["a2"], "conv2", pads=[1] * 4, strides=[stride] * 2
        ),
        helper.make_node("Relu", ["a2"], ["r2"], "relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], "gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], "flatten"),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], "fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "cnn", [_value("image", TensorProto.FLOAT, [batch, channels, size, size])],
        [_value("logits", TensorProto.FLOAT, [batch, classes])], inits,
    )  # fmt: skip
    return _save(dir, filename, graph, opset=opset, ir=ir)


def make_dynamic_shapes(dir: Path | str, *, seed: int = 0, filename: str = "dynamic.onnx") -> Path:
    """x float32 [batch, seq] -> y = Softmax(x * w + b, axis=-1) [batch, seq], both dims named."""
    rng = np.random.default_rng(seed)
    inits = [
        _init("scale", rng.uniform(0.5, 1.5, size=(1,))),
        _init("shift", rng.standard_normal(1)),
    ]
    nodes = [
        helper.make_node("Mul", ["x", "scale"], ["xs"], "scale"),
        helper.make_node("Add", ["xs", "shift"], ["xb"], "shift"),
        helper.make_node("Softmax", ["xb"], ["y"], "softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "dynamic", [_value("x", TensorProto.FLOAT, ["batch", "seq"])],
        [_value("y", TensorProto.FLOAT, ["batch", "seq"])], inits,
    )  # fmt: skip
    return _save(dir, filename, graph)


class _Bert:
    """Accumulates the nodes and initializers of make_bert_like's graph."""

    def __init__(self, hidden: int, heads: int, seed: int) -> None:
        self.hidden, self.heads = hidden, heads
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def weight(self, name: str, shape: tuple[int, ...], scale: float = 0.1) -> str:
        self.inits.append(_init(name, self.rng.standard_normal(shape) * scale))
        return name

    def const(
        self,
        name: str,
        value: np.ndarray | list[float] | list[int] | float,
        dtype: type = np.float32,
    ) -> str:
        self.inits.append(_init(name, value, dtype))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name, **attrs))
        return name

    def linear(self, x: str, prefix: str, n_in: int, n_out: int) -> str:
        mm = self.node("MatMul", [x, self.weight(f"{prefix}.w", (n_in, n_out))], f"{prefix}_mm")
        return self.node("Add", [mm, self.weight(f"{prefix}.b", (n_out,), 0.02)], f"{prefix}_out")

    def layer_norm(self, x: str, prefix: str) -> str:
        gamma = self.const(f"{prefix}.gamma", np.ones(self.hidden))
        beta = self.const(f"{prefix}.beta", np.zeros(self.hidden))
        return self.node(
            "LayerNormalization", [x, gamma, beta], f"{prefix}_out", axis=-1, epsilon=1e-12
        )

    def heads_split(self, x: str, prefix: str, perm: list[int]) -> str:
        reshaped = self.node("Reshape", [x, "shape_heads"], f"{prefix}_reshape")
        return self.node("Transpose", [reshaped], f"{prefix}_transpose", perm=perm)

    def attention(self, x: str, mask_bias: str, p: str) -> str:
        """The canonical BERT self-attention block plus residual Add and LayerNorm."""
        h = self.hidden
        q = self.heads_split(self.linear(x, f"{p}.q", h, h), f"{p}.q", [0, 2, 1, 3])
        k = self.heads_split(self.linear(x, f"{p}.k", h, h), f"{p}.k", [0, 2, 3, 1])
        v = self.heads_split(self.linear(x, f"{p}.v", h, h), f"{p}.v", [0, 2, 1, 3])
        scores = self.node("MatMul", [q, k], f"{p}.qk")
        scaled = self.node("Div", [scores, "sqrt_head_size"], f"{p}.qk_scaled")
        masked = self.node("Add", [scaled, mask_bias], f"{p}.qk_masked")
        probs = self.node("Softmax", [masked], f"{p}.probs", axis=3)
        context = self.node("MatMul", [probs, v], f"{p}.context")
        merged = self.node("Transpose", [context], f"{p}.context_t", perm=[0, 2, 1, 3])
        flat = self.node("Reshape", [merged, "shape_hidden"], f"{p}.context_flat")
        projected = self.linear(flat, f"{p}.o", h, h)
        residual = self.node("Add", [projected, x], f"{p}.attn_residual")
        return self.layer_norm(residual, f"{p}.attn_ln")

    def gelu(self, x: str, p: str) -> str:
        """Erf-form Gelu: x * 0.5 * (1 + erf(x / sqrt(2)))."""
        div = self.node("Div", [x, "sqrt2"], f"{p}.gelu_div")
        erf = self.node("Erf", [div], f"{p}.gelu_erf")
        plus = self.node("Add", [erf, "one"], f"{p}.gelu_add")
        mul = self.node("Mul", [x, plus], f"{p}.gelu_mul")
        return self.node("Mul", [mul, "half"], f"{p}.gelu_out")

    def ffn(self, x: str, p: str) -> str:
        up = self.linear(x, f"{p}.ffn_up", self.hidden, 4 * self.hidden)
        down = self.linear(self.gelu(up, p), f"{p}.ffn_down", 4 * self.hidden, self.hidden)
        residual = self.node("Add", [down, x], f"{p}.ffn_residual")
        return self.layer_norm(residual, f"{p}.ffn_ln")

    def mask_bias(self) -> str:
        """attention_mask [batch, seq] int64 -> (1 - mask) * -10000 as [batch, 1, 1, seq]."""
        u1 = self.node("Unsqueeze", ["attention_mask", "axes_1"], "mask_unsqueeze1")
        u2 = self.node("Unsqueeze", [u1, "axes_2"], "mask_unsqueeze2")
        cast = self.node("Cast", [u2], "mask_float", to=TensorProto.FLOAT)
        inverted = self.node("Sub", ["one", cast], "mask_inverted")
        return self.node("Mul", [inverted, "mask_neg"], "mask_bias")

    def embeddings(self, vocab: int, max_positions: int, token_types: bool) -> str:
        h = self.hidden
        words = self.node("Gather", [self.weight("emb.word", (vocab, h)), "input_ids"], "emb_words")
        shape = self.node("Shape", ["input_ids"], "ids_shape")
        seq_len = self.node("Gather", [shape, "index_1"], "seq_len", axis=0)
        positions = self.node("Range", ["zero_i64", seq_len, "one_i64"], "position_ids")
        pos_emb = self.node(
            "Gather", [self.weight("emb.position", (max_positions, h)), positions], "emb_pos"
        )
        total = self.node("Add", [words, pos_emb], "emb_sum")
        if token_types:
            types = self.node(
                "Gather", [self.weight("emb.type", (2, h)), "token_type_ids"], "emb_types"
            )
            total = self.node("Add", [total, types], "emb_sum_types")
        return self.layer_norm(total, "emb_ln")

    def constants(self) -> None:
        head = self.hidden // self.heads
        i64 = np.int64
        self.const("shape_heads", [0, 0, self.heads, head], i64)
        self.const("shape_hidden", [0, 0, self.hidden], i64)
        self.const("sqrt_head_size", math.sqrt(head))
        for name, value in (
            ("sqrt2", math.sqrt(2.0)),
            ("one", 1.0),
            ("half", 0.5),
            ("mask_neg", -10000.0),
        ):
            self.const(name, value)
        for name, value in (("axes_1", [1]), ("axes_2", [2])):
            self.const(name, value, i64)
        for name, value in (("index_1", 1), ("zero_i64", 0), ("one_i64", 1)):
            self.const(name, value, i64)


def make_bert_like(
    dir: Path | str,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    seq: int = 16,
    vocab: int = 100,
    *,
    token_type_ids: bool = False,
    pooled: bool = False,
    seed: int = 0,
    filename: str = "bert_like.onnx",
) -> Path:
    """Tiny BERT encoder that ORT's bert optimizer fuses (Attention, SkipLayerNorm, BiasGelu).

    Inputs input_ids, attention_mask (and token_type_ids if asked) int64 [batch, sequence];
    `seq` is the number of position embeddings, i.e. the longest sequence it accepts.
    Output last_hidden_state float32 [batch, sequence, hidden] (+ pooler_output [batch,
    hidden] if `pooled`). Mask path: Unsqueeze, Unsqueeze, Cast, Sub(1, m), Mul(-10000),
    as in PyTorch BERT exports; Gelu is the Erf form.
    """
    if hidden % heads:
        raise ValueError(f"hidden={hidden} must be a multiple of heads={heads}")
    b = _Bert(hidden, heads, seed)
    b.constants()
    x = b.embeddings(vocab, seq, token_type_ids)
    mask_bias = b.mask_bias()
    for i in range(layers):
        x = b.ffn(b.attention(x, mask_bias, f"layer{i}"), f"layer{i}")
    b.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], "output"))
    dims: list[Dim] = ["batch", "sequence"]
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if token_type_ids else [])
    outputs = [_value("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])]
    if pooled:
        first = b.node("Gather", [x, "zero_i64"], "first_token", axis=1)
        dense = b.linear(first, "pooler", hidden, hidden)
        b.nodes.append(helper.make_node("Tanh", [dense], ["pooler_output"], "pooler_tanh"))
        outputs.append(_value("pooler_output", TensorProto.FLOAT, ["batch", hidden]))
    inputs = [_value(n, TensorProto.INT64, dims) for n in names]
    graph = helper.make_graph(b.nodes, "bert_like", inputs, outputs, b.inits)
    # ORT's bert optimizer logs a warning unless the producer is "pytorch", whose export
    # layout this graph follows.
    return _save(dir, filename, graph, producer="pytorch")


def make_unfused_attention(
    dir: Path | str, *, dim: int = 32, seed: int = 0, filename: str = "unfused_attention.onnx"
) -> Path:
    """Single-head self-attention (MatMul -> Softmax -> MatMul) that ORT cannot fuse.

    x float32 [batch, seq, dim] -> y [batch, seq, dim]. ORT's attention fusion
    (onnxruntime/transformers/fusion_attention.py) starts from a LayerNormalization or
    SkipLayerNormalization whose input is a residual Add, and walks back through
    Add(bias) <- MatMul <- Reshape <- Transpose <- MatMul(probs, V) to per-head Q/K/V
    projections with biases. This block has no LayerNorm/residual anchor, no projection
    biases and no Reshape/Transpose head split (it scales Q by 1/sqrt(dim) before the
    QK MatMul), so no pattern matches and no Attention/MultiHeadAttention node appears,
    while the graph still has the MatMul -> Softmax -> MatMul attention core.
    """
    rng = np.random.default_rng(seed)
    inits = [_init(f"w{n}", rng.standard_normal((dim, dim)) / math.sqrt(dim)) for n in "qkvo"]
    inits.append(_init("scale", 1.0 / math.sqrt(dim)))
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], "q_proj"),
        helper.make_node("Mul", ["q", "scale"], ["q_scaled"], "q_scale"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], "k_proj"),
        helper.make_node("Transpose", ["k"], ["k_t"], "k_transpose", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "wv"], ["v"], "v_proj"),
        helper.make_node("MatMul", ["q_scaled", "k_t"], ["scores"], "qk"),
        helper.make_node("Softmax", ["scores"], ["probs"], "softmax", axis=-1),
        helper.make_node("MatMul", ["probs", "v"], ["context"], "context"),
        helper.make_node("MatMul", ["context", "wo"], ["y"], "o_proj"),
    ]
    graph = helper.make_graph(
        nodes, "unfused_attention", [_value("x", TensorProto.FLOAT, ["batch", "seq", dim])],
        [_value("y", TensorProto.FLOAT, ["batch", "seq", dim])], inits,
    )  # fmt: skip
    return _save(dir, filename, graph)


def make_planted_fallback(
    dir: Path | str,
    *,
    middle_op: str = "Shrink",
    batch: Dim = 1,
    size: int = 16,
    seed: int = 0,
    filename: str = "planted_fallback.onnx",
) -> Path:
    """Conv -> Relu -> `middle_op` -> Conv -> Relu, fixed shapes; Shrink runs on CPU only.

    Shrink (soft-threshold) is a standard ONNX op that the CPU EP implements but that no
    op builder of the QNN, NNAPI or CoreML EPs handles (their op_builder_factory.cc), so a
    device EP must hand that one node back to the CPU: two partitions plus copies.
    tests/test_models.py proves it for QNN on the HTP simulator.
    Pass middle_op="Relu" for the control model that a device EP can take whole.
    Shapes are fixed (batch=1) because QNN/NNAPI reject dynamic shapes outright.
    """
    rng = np.random.default_rng(seed)
    inits = [
        _init("c1.w", rng.standard_normal((8, 3, 3, 3)) * 0.3),
        _init("c1.b", np.zeros(8)),
        _init("c2.w", rng.standard_normal((8, 8, 3, 3)) * 0.2),
        _init("c2.b", np.zeros(8)),
    ]
    attrs: dict[str, float] = {"lambd": 0.25} if middle_op == "Shrink" else {}
    nodes = [
        helper.make_node("Conv", ["image", "c1.w", "c1.b"], ["a1"], "conv1", pads=[1] * 4),
        helper.make_node("Relu", ["a1"], ["r1"], "relu1"),
        helper.make_node(middle_op, ["r1"], ["mid"], "planted", **attrs),
        helper.make_node("Conv", ["mid", "c2.w", "c2.b"], ["a2"], "conv2", pads=[1] * 4),
        helper.make_node("Relu", ["a2"], ["features"], "relu2"),
    ]
    graph = helper.make_graph(
        nodes, "planted_fallback", [_value("image", TensorProto.FLOAT, [batch, 3, size, size])],
        [_value("features", TensorProto.FLOAT, [batch, 8, size, size])], inits,
    )  # fmt: skip
    return _save(dir, filename, graph)


def make_thread_contention(
    dir: Path | str,
    *,
    depth: int = 200,
    rows: int = 4,
    width: int = 16,
    filename: str = "thread_contention.onnx",
) -> Path:
    """A chain of `depth` LayerNormalizations on a [rows, width] tensor: slower with more threads.

    ORT's CPU LayerNormalization hands its rows to the intra-op thread pool with no cost
    model (batch-parallel), so every tiny node pays a dispatch/sync that dwarfs its work.
    Measured once with ORT 1.32 on a 2-core x86 host: median latency 2-5x higher with
    intra_op_num_threads=2 than with 1 (tests never assert timings).
    """
    inits = [_init("gamma", np.ones(width)), _init("beta", np.zeros(width))]
    nodes, current = [], "x"
    for i in range(depth):
        nodes.append(
            helper.make_node("LayerNormalization", [current, "gamma", "beta"], [f"ln{i}"], f"ln{i}")
        )
        current = f"ln{i}"
    nodes.append(helper.make_node("Identity", [current], ["y"], "output"))
    graph = helper.make_graph(
        nodes, "thread_contention", [_value("x", TensorProto.FLOAT, [rows, width])],
        [_value("y", TensorProto.FLOAT, [rows, width])], inits,
    )  # fmt: skip
    return _save(dir, filename, graph)


CORRUPTIONS = ("truncated", "random_bytes", "opset_99", "ir_99")


def corrupt_model_bytes(dir: Path | str, kind: str, *, seed: int = 0) -> Path:
    """Write a broken model of one of CORRUPTIONS kinds to dir/<kind>.onnx and return it.

    truncated: the first 60% of a valid MLP; random_bytes: 4 KiB of noise; opset_99: a valid
    graph that imports default-domain opset 99; ir_99: a valid graph stamped IR version 99.
    """
    if kind not in CORRUPTIONS:
        raise ValueError(f"kind must be one of {CORRUPTIONS}, got {kind!r}")
    directory = Path(dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind}.onnx"
    if kind == "random_bytes":
        path.write_bytes(np.random.default_rng(seed).bytes(4096))
        return path
    source = make_mlp(directory, seed=seed, filename=f"{kind}.source.onnx")
    good = onnx.load(str(source))
    source.unlink()
    if kind == "truncated":
        data = good.SerializeToString()
        path.write_bytes(data[: len(data) * 6 // 10])
    elif kind == "opset_99":
        good.opset_import[0].version = 99
        path.write_bytes(good.SerializeToString())
    else:
        good.ir_version = 99
        path.write_bytes(good.SerializeToString())
    return path


def make_two_input(
    dir: Path | str,
    *,
    features: int = 6,
    ids: int = 3,
    vocab: int = 10,
    hidden: int = 8,
    classes: int = 4,
    seed: int = 0,
    filename: str = "tiny.onnx",
) -> Path:
    """The issue's "tiny" model: feats float32 [batch, features] + ids int64 [batch, ids]
    -> Gather(embedding, ids) summed over ids, plus MatMul(feats) -> y [batch, classes]."""
    rng = np.random.default_rng(seed)
    inits = [
        _init("emb", rng.standard_normal((vocab, hidden)) * 0.5),
        _init("wf", rng.standard_normal((features, hidden)) * 0.5),
        _init("wo", rng.standard_normal((hidden, classes)) * 0.5),
        _init("bo", rng.standard_normal(classes) * 0.1),
        _init("axis1", [1], np.int64),
    ]
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], "embed"),
        helper.make_node("ReduceSum", ["e", "axis1"], ["es"], "pool", keepdims=0),
        helper.make_node("MatMul", ["feats", "wf"], ["f"], "proj"),
        helper.make_node("Add", ["f", "es"], ["h"], "merge"),
        helper.make_node("Relu", ["h"], ["hr"], "relu"),
        helper.make_node("MatMul", ["hr", "wo"], ["o"], "head"),
        helper.make_node("Add", ["o", "bo"], ["y"], "head_bias"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [_value("feats", TensorProto.FLOAT, ["batch", features]),
         _value("ids", TensorProto.INT64, ["batch", ids])],
        [_value("y", TensorProto.FLOAT, ["batch", classes])], inits,
    )  # fmt: skip
    return _save(dir, filename, graph)
