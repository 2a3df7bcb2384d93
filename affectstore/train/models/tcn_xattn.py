"""``tcn-xattn``: multi-scale TCNs and cross-modal attention, visual query over audio keys/values
(Yu et al., ABAW 2025, valence/arousal).

Every sequence stream runs through three TCNs with kernels 3, 5 and 7 whose outputs are
summed (multi-scale temporal context). The visual stream (``query``; default: the first
stream extracted from faces or frames) attends to each other sequence stream with
multi-head cross-attention (visual query, audio key/value). The visual encoding and each
attended stream are concatenated per step, then LayerNorm -> Linear -> GELU -> Dropout ->
Linear to the outputs (valence and arousal), read at the window's centre step for frame
items (the target frame) or averaged over time for video items. Pooled streams are
broadcast over the steps. Loss: CCC (the registry's default for this model).
A video without the query stream uses a learned missing token at every step; one without an
audio stream gets that stream's learned missing token instead of its attention output.
"""

from __future__ import annotations

import torch
from torch import nn

from affectstore.train.sequence.estimator import SequenceEstimator
from affectstore.train.sequence.layers import TCN, MissingToken, lengths_mask, masked_mean


class MultiScaleTCN(nn.Module):
    """Sum of TCNs with kernels 3, 5, 7."""

    def __init__(self, dim: int, hidden: int, levels: int, dropout: float, kernels=(3, 5, 7)):
        super().__init__()
        self.branches = nn.ModuleList([TCN(dim, hidden, levels, k, dropout) for k in kernels])

    def forward(self, x, lengths):
        return sum(b(x, lengths) for b in self.branches)


class TCNXAttnNet(nn.Module):
    """Multi-scale TCN per stream -> visual-query cross-attention -> concat -> LayerNorm MLP head."""

    def __init__(self, streams, dims, n_out: int, arch: dict, dropout: float, level: str):
        super().__init__()
        h = int(arch["hidden"])
        self.query = arch["query"]
        self.centre = level == "frame"
        self.seq = [k for k, s in streams.items() if not s.pooled]
        self.vec = [k for k, s in streams.items() if s.pooled]
        if self.query not in self.seq:
            raise ValueError(f"query stream {self.query!r} must be one of the sequence streams {self.seq}.")
        self.others = [k for k in self.seq if k != self.query]
        self.encoders = nn.ModuleDict({k: MultiScaleTCN(dims[k], h, int(arch["tcn_levels"]), dropout) for k in self.seq})
        self.attn = nn.ModuleDict({k: nn.MultiheadAttention(h, int(arch["heads"]), dropout=dropout, batch_first=True)
                                   for k in self.others})
        self.missing = nn.ModuleDict({k: MissingToken(h) for k in self.seq})
        self.vec_maps = nn.ModuleDict({k: nn.Linear(dims[k], h) for k in self.vec})
        width = h * (1 + len(self.others) + len(self.vec))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, int(arch["head_hidden"])), nn.GELU(),
                                  nn.Dropout(dropout), nn.Linear(int(arch["head_hidden"]), n_out))

    def forward(self, batch: dict) -> torch.Tensor:
        xq, nq = batch[self.query]
        q = self.missing[self.query](self.encoders[self.query](xq, nq), nq)
        steps = nq.clamp(min=1)
        if self.centre:
            # A video without the query stream still has one (token) step to read.
            steps = torch.where(nq > 0, nq, torch.ones_like(nq))
        parts = [q]
        for k in self.others:
            x, n = batch[k]
            kv = self.encoders[k](x, n)
            pad = ~lengths_mask(n.clamp(min=1), x.shape[1])  # an empty stream keeps one (zero) key
            att, _ = self.attn[k](q, kv, kv, key_padding_mask=pad, need_weights=False)
            parts.append(self.missing[k](att, n))
        for k in self.vec:
            x, n = batch[k]
            parts.append(self.vec_maps[k](x[:, :1]).expand(-1, q.shape[1], -1) * (n > 0).view(-1, 1, 1))
        z = torch.cat(parts, dim=-1)
        if self.centre:
            idx = ((steps - 1) // 2).view(-1, 1, 1).expand(-1, 1, z.shape[2])
            pooled = torch.gather(z, 1, idx)[:, 0]
        else:
            pooled = masked_mean(z, steps)
        return self.head(pooled)


class TCNXAttn(SequenceEstimator):
    """Multi-scale TCN + cross-modal attention; ``arch``: hidden (128), tcn_levels (2), heads (4),
    head_hidden (128), query (visual stream name; default: the first face/frame stream)."""

    network = TCNXAttnNet
    arch_defaults = {"hidden": 128, "tcn_levels": 2, "heads": 4, "head_hidden": 128, "query": None}

    def resolve_arch(self, view, streams) -> dict:
        if (self.arch or {}).get("query"):
            return {}
        infos = view.source.infos
        seq = [k for k, s in streams.items() if not s.pooled]
        faces = [k for k in seq if infos[streams[k].features[0]].input in ("faces", "frames")]
        if not seq:
            raise ValueError("tcn-xattn needs at least one sequence stream (a visual one as the query).")
        return {"query": (faces or seq)[0]}
