"""multilingual-e5-small's XLM-R encoder in bare torch: windows of token ids -> mean-pooled vectors.

It reads the converted folder's `model.safetensors` and computes what transformers' XLMRobertaModel
computes (tests/test_convert.py compares the two), with less around it:
- no transformers or sentence-transformers import, so a server that embeds its questions with it stays
  small (docs/benchmarks.md);
- the 250,037 x 384 word table stays on disk: only the rows of a batch's tokens are read (`_Rows`);
- on a CPU with bf16 matrix units, the weights are packed once into oneDNN's layout, and the first
  feed-forward product carries its GELU (as torch.compile's freezing pass does), which makes each product
  about 1.5x faster than `F.linear` here;
- the tokens of a batch are packed into one matrix for the products, whose row count is rounded up to a
  few sizes, so that oneDNN builds a kernel once per size, not once per batch; attention alone sees the
  texts padded to the longest;
- the forward pass is one TorchScript module that owns its weights (`_Layers`), and runs without Python's
  GIL. Run op by op from Python, each of a forward's 200 operations takes the GIL back when it ends, and in a
  server whose other threads run Python each of those waits its turn: a batch of 8 questions took 2.9 s
  instead of 42 ms next to one busy Python thread, 0.7 s as TorchScript on weights Python held, and 93 ms
  in the module that owns them (docs/benchmarks.md).
"""

import json
import math
import mmap
import warnings
from pathlib import Path
from typing import List

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from ingest.errors import BadEmbedder


def _rows(n: int) -> int:
    """`n` rounded up to one of 4 sizes per doubling (at least a multiple of 16): under 25 % padding."""
    step = max(16, 2 ** max(0, math.ceil(math.log2(max(n, 1))) - 3))
    return -(-n // step) * step


class Encoder:
    def __init__(self, folder: Path, device: str, dtype: torch.dtype) -> None:
        self.device = device
        config = json.loads((folder / "config.json").read_text("utf-8"))
        self.hidden, self.heads = config["hidden_size"], config["num_attention_heads"]
        self.eps, self.pad = config["layer_norm_eps"], config["pad_token_id"]
        self.bos, self.eos = config["bos_token_id"], config["eos_token_id"]
        path = folder / "model.safetensors"
        header, start = _safetensors_header(path)
        self._words = _Rows(path, header["embeddings.word_embeddings.weight"], start)
        packed = device == "cpu" and dtype == torch.bfloat16 and _has_packed_linear()
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            get = lambda name: f.get_tensor(name).to(device=device, dtype=dtype)  # noqa: E731
            # XLM-R numbers positions from pad + 1.
            positions = get("embeddings.position_embeddings.weight")[self.pad + 1 :]
            embeddings = [
                positions, get("embeddings.token_type_embeddings.weight")[0],
                get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"),
            ]
            layers = []
            for i in range(config["num_hidden_layers"]):
                p = f"encoder.layer.{i}."
                qkv = [get(f"{p}attention.self.{x}.weight") for x in ("query", "key", "value")]
                qkv_bias = [get(f"{p}attention.self.{x}.bias") for x in ("query", "key", "value")]
                layers.append([
                    torch.cat(qkv), torch.cat(qkv_bias),
                    get(f"{p}attention.output.dense.weight"), get(f"{p}attention.output.dense.bias"),
                    get(f"{p}attention.output.LayerNorm.weight"), get(f"{p}attention.output.LayerNorm.bias"),
                    get(f"{p}intermediate.dense.weight"), get(f"{p}intermediate.dense.bias"),
                    get(f"{p}output.dense.weight"), get(f"{p}output.dense.bias"),
                    get(f"{p}output.LayerNorm.weight"), get(f"{p}output.LayerNorm.bias"),
                ])
        self.max_tokens = len(positions)
        with warnings.catch_warnings():
            # TorchScript is deprecated for torch.compile and torch.export, which need a C++ compiler at run
            # time; it is what runs a whole forward without the GIL in torch 2.13, pinned in constraints.txt.
            warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
            self._layers = torch.jit.script(_Layers(self.heads, self.eps, packed))
        self._layers.load(embeddings, layers)

    def __call__(self, windows: list[list[int]]) -> np.ndarray:
        """The mean of the last layer over each window's tokens, in fp32 and not normalised. Each window is
        the ids of <s>, its content and </s>, at most `max_tokens` of them."""
        lengths = [len(w) for w in windows]
        if not windows or min(lengths) < 1 or max(lengths) > self.max_tokens:
            raise BadEmbedder(f"Windows must hold 1 to {self.max_tokens} tokens; got {lengths[:8]}…")
        n, longest = sum(lengths), max(lengths)
        ids = np.full(_rows(n), self.pad, np.int64)
        ids[:n] = np.concatenate(windows)
        # Where each token sits among the texts padded to the longest, for attention.
        slots = np.concatenate([np.arange(k) + i * longest for i, k in enumerate(lengths)])
        positions = np.concatenate([np.arange(k) for k in lengths])
        owner = np.repeat(np.arange(len(windows)), lengths)
        tensor = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        with torch.inference_mode():
            means = self._layers(
                tensor(self._words.take(ids)), tensor(positions), tensor(slots), tensor(owner),
                tensor(np.asarray(lengths, np.float32)), longest,
            )
        return means.cpu().numpy()


class _Layers(torch.nn.Module):
    """The forward pass as TorchScript, which runs without the GIL, on weights that Python never holds.

    A tensor that Python holds takes the GIL whenever C++ counts a reference to it, so the weights are
    copied inside `load` (and packed there), and the inputs at the start of `forward`: a forward then takes
    the GIL a few times, not a few hundred."""

    embeddings: List[Tensor]
    layers: List[List[Tensor]]

    def __init__(self, heads: int, eps: float, packed: bool) -> None:
        super().__init__()
        self.heads, self.eps, self.packed = heads, eps, packed
        self.embeddings, self.layers = [], []

    @torch.jit.export
    def load(self, embeddings: List[Tensor], layers: List[List[Tensor]]) -> None:
        self.embeddings = [t.clone() for t in embeddings]
        own_layers: List[List[Tensor]] = []
        for w in layers:
            own = [t.clone() for t in w]
            if self.packed:
                for i in (0, 2, 6, 8):
                    own[i] = torch.ops.mkldnn._reorder_linear_weight(own[i], 256)
            own_layers.append(own)
        self.layers = own_layers

    def _linear(self, x: Tensor, w: Tensor, b: Tensor, gelu: bool) -> Tensor:
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x, w, b, "gelu" if gelu else "none", [], "none" if gelu else "")
        y = F.linear(x, w, b)
        return F.gelu(y) if gelu else y

    def forward(
        self, words: Tensor, positions: Tensor, slots: Tensor, owner: Tensor, lengths: Tensor, longest: int
    ) -> Tensor:
        """`words` are the fp32 rows of the packed tokens (padding rows last); the other arrays describe the
        n real ones. Returns each text's mean, in fp32."""
        words, positions, slots, owner, lengths = words.clone(), positions.clone(), slots.clone(), owner.clone(), lengths.clone()
        e = self.embeddings
        n, count, width = slots.size(0), lengths.size(0), words.size(1)
        x = words.to(e[0].dtype)
        x[:n] += e[0][positions]
        x = F.layer_norm(x + e[1], [width], e[2], e[3], self.eps)
        keep = torch.zeros(count * longest, dtype=torch.bool, device=x.device)
        keep[slots] = True
        mask = keep.view(count, 1, 1, longest)
        for w in self.layers:
            qkv = self._linear(x, w[0], w[1], False)
            grid = qkv.new_zeros(count * longest, 3 * width)
            grid[slots] = qkv[:n]
            q, k, v = grid.view(count, longest, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)
            context = x.new_zeros(x.size(0), width)
            context[:n] = attended.reshape(count * longest, width)[slots]
            x = F.layer_norm(self._linear(context, w[2], w[3], False) + x, [width], w[4], w[5], self.eps)
            h = self._linear(x, w[6], w[7], True)
            x = F.layer_norm(self._linear(h, w[8], w[9], False) + x, [width], w[10], w[11], self.eps)
        # Pooled in fp32 whatever the model's dtype: the mean of a few hundred bf16 values loses digits.
        sums = torch.zeros(count, width, device=x.device).index_add_(0, owner, x[:n].float())
        return sums / lengths[:, None]


def _has_packed_linear() -> bool:
    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise") and hasattr(ops, "_reorder_linear_weight")


def _safetensors_header(path: Path) -> tuple[dict, int]:
    """The tensor directory of a safetensors file, and where its data begins."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(size)), 8 + size


class _Rows:
    """The rows of an fp32 matrix in a safetensors file, read as they are asked for.

    Memory-mapped, and given back after each read: the kernel maps 64 KB around every page a mapping
    touches, so the 384 MB word table crept into the server's resident memory at about 1 MB per new
    question. Dropped from the mapping, the pages stay in the page cache, shared and reclaimable."""

    def __init__(self, path: Path, entry: dict, start: int) -> None:
        if entry["dtype"] != "F32" or len(entry["shape"]) != 2:
            raise BadEmbedder(f"{path}: expected an fp32 matrix of word embeddings, found {entry['dtype']}.")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end - begin != 4 * shape[0] * shape[1]:
            raise BadEmbedder(f"{path}: the word embeddings' size does not match their shape.")
        offset = start + begin
        base = offset - offset % mmap.ALLOCATIONGRANULARITY
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), offset + end - begin - base, access=mmap.ACCESS_READ, offset=base)
        self._table = np.frombuffer(self._map, dtype="<f4", count=shape[0] * shape[1], offset=offset - base)
        self._table = self._table.reshape(shape)

    def take(self, ids: np.ndarray) -> np.ndarray:
        if ids.min() < 0 or ids.max() >= len(self._table):
            raise BadEmbedder(f"Token ids out of range 0..{len(self._table) - 1}.")
        rows = self._table[ids]
        self._map.madvise(mmap.MADV_DONTNEED)
        return rows
