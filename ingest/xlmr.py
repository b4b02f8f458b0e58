"""multilingual-e5-small's XLM-R encoder in bare torch: windows of token ids -> mean-pooled vectors.

It reads the converted folder's `model.safetensors` and computes what transformers' XLMRobertaModel
computes (tests/test_convert.py compares the two), with less around it:
- no transformers or sentence-transformers import, so a server that embeds its questions with it stays
  small (docs/benchmarks.md);
- the 250,037 x 384 word table stays on disk, memory-mapped: only the rows of tokens seen are read;
- on a CPU with bf16 matrix units, the weights are packed once into oneDNN's layout, and the first
  feed-forward product carries its GELU (as torch.compile's freezing pass does), which makes each product
  about 1.5x faster than `F.linear` here;
- the tokens of a batch are packed into one matrix for the products, whose row count is rounded up to a
  few sizes, so that oneDNN builds a kernel once per size, not once per batch; attention alone sees the
  texts padded to the longest.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ingest.errors import BadEmbedder


def _rows(n: int) -> int:
    """`n` rounded up to one of 8 sizes per doubling (at least a multiple of 16): at most 12.5 % padding."""
    step = max(16, 2 ** max(0, math.ceil(math.log2(max(n, 1))) - 3))
    return -(-n // step) * step


class Encoder:
    def __init__(self, folder: Path, device: str, dtype: Any) -> None:
        import torch

        self._torch = torch
        self.device, self.dtype = device, dtype
        config = json.loads((folder / "config.json").read_text("utf-8"))
        self.hidden, self.heads = config["hidden_size"], config["num_attention_heads"]
        self.eps, self.pad = config["layer_norm_eps"], config["pad_token_id"]
        self.bos, self.eos = config["bos_token_id"], config["eos_token_id"]
        path = folder / "model.safetensors"
        header, start = _safetensors_header(path)
        self._words = _mapped(path, header["embeddings.word_embeddings.weight"], start)
        self._packed = device == "cpu" and dtype == torch.bfloat16 and _has_packed_linear()
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            get = lambda name: f.get_tensor(name).to(device=device, dtype=dtype)  # noqa: E731
            # XLM-R numbers positions from pad + 1.
            self._positions = get("embeddings.position_embeddings.weight")[self.pad + 1 :]
            self._type = get("embeddings.token_type_embeddings.weight")[0]
            self._norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
            self._layers = []
            for i in range(config["num_hidden_layers"]):
                p = f"encoder.layer.{i}."
                qkv = [get(f"{p}attention.self.{x}.weight") for x in ("query", "key", "value")]
                qkv_bias = [get(f"{p}attention.self.{x}.bias") for x in ("query", "key", "value")]
                self._layers.append((
                    self._weight(torch.cat(qkv)), torch.cat(qkv_bias),
                    self._weight(get(f"{p}attention.output.dense.weight")), get(f"{p}attention.output.dense.bias"),
                    get(f"{p}attention.output.LayerNorm.weight"), get(f"{p}attention.output.LayerNorm.bias"),
                    self._weight(get(f"{p}intermediate.dense.weight")), get(f"{p}intermediate.dense.bias"),
                    self._weight(get(f"{p}output.dense.weight")), get(f"{p}output.dense.bias"),
                    get(f"{p}output.LayerNorm.weight"), get(f"{p}output.LayerNorm.bias"),
                ))
        self.max_tokens = len(self._positions)

    def _weight(self, w: Any) -> Any:
        return self._torch.ops.mkldnn._reorder_linear_weight(w, 256) if self._packed else w

    def _linear(self, x: Any, w: Any, b: Any, gelu: bool = False) -> Any:
        F = self._torch.nn.functional
        if self._packed:
            return self._torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu" if gelu else "none", [], "none" if gelu else "")
        y = F.linear(x, w, b)
        return F.gelu(y) if gelu else y

    def __call__(self, windows: list[list[int]]) -> np.ndarray:
        """The mean of the last layer over each window's tokens, in fp32 and not normalised. Each window is
        the ids of <s>, its content and </s>, at most `max_tokens` of them."""
        torch, F = self._torch, self._torch.nn.functional
        lengths = [len(w) for w in windows]
        if not windows or min(lengths) < 1 or max(lengths) > self.max_tokens:
            raise BadEmbedder(f"Windows must hold 1 to {self.max_tokens} tokens; got {lengths[:8]}…")
        n, count, longest, width = sum(lengths), len(windows), max(lengths), self.hidden
        rows = _rows(n)
        ids = np.full(rows, self.pad, np.int64)
        ids[:n] = np.concatenate(windows)
        # Where each token sits among the texts padded to the longest, for attention.
        slots = torch.from_numpy(np.concatenate([np.arange(k) + i * longest for i, k in enumerate(lengths)]))
        keep = torch.zeros(count * longest, dtype=torch.bool)
        keep[slots] = True
        mask = keep.view(count, 1, 1, longest).to(self.device)
        slots = slots.to(self.device)
        positions = torch.from_numpy(np.concatenate([np.arange(k) for k in lengths])).to(self.device)
        with torch.inference_mode():
            x = torch.from_numpy(np.take(self._words, ids, axis=0)).to(device=self.device, dtype=self.dtype)
            x[:n] += self._positions[positions]
            x = F.layer_norm(x + self._type, (width,), *self._norm, self.eps)
            shape = (count, longest, 3, self.heads, width // self.heads)
            for qkv_w, qkv_b, out_w, out_b, ln1_w, ln1_b, up_w, up_b, down_w, down_b, ln2_w, ln2_b in self._layers:
                qkv = self._linear(x, qkv_w, qkv_b)
                grid = qkv.new_zeros(count * longest, 3 * width)
                grid[slots] = qkv[:n]
                q, k, v = grid.view(shape).permute(2, 0, 3, 1, 4)
                attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)
                context = x.new_zeros(rows, width)
                context[:n] = attended.reshape(count * longest, width)[slots]
                x = F.layer_norm(self._linear(context, out_w, out_b) + x, (width,), ln1_w, ln1_b, self.eps)
                h = self._linear(x, up_w, up_b, gelu=True)
                x = F.layer_norm(self._linear(h, down_w, down_b) + x, (width,), ln2_w, ln2_b, self.eps)
            # Pooled in fp32 whatever the model's dtype: the mean of a few hundred bf16 values loses digits.
            owner = torch.from_numpy(np.repeat(np.arange(count), lengths)).to(self.device)
            sums = torch.zeros(count, width, device=self.device).index_add_(0, owner, x[:n].float())
            means = sums / torch.tensor(lengths, dtype=torch.float32, device=self.device)[:, None]
        return means.cpu().numpy()


def _has_packed_linear() -> bool:
    import torch

    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise") and hasattr(ops, "_reorder_linear_weight")


def _safetensors_header(path: Path) -> tuple[dict, int]:
    """The tensor directory of a safetensors file, and where its data begins."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(size)), 8 + size


def _mapped(path: Path, entry: dict, start: int) -> np.ndarray:
    """One fp32 tensor of a safetensors file, memory-mapped read-only."""
    if entry["dtype"] != "F32":
        raise BadEmbedder(f"{path}: expected fp32 word embeddings, found {entry['dtype']}.")
    begin, end = entry["data_offsets"]
    shape = tuple(entry["shape"])
    if end - begin != 4 * math.prod(shape):
        raise BadEmbedder(f"{path}: the word embeddings' size does not match their shape.")
    return np.memmap(path, dtype="<f4", mode="r", offset=start + begin, shape=shape)
