"""``lstm-fusion``: per-modality LSTMs fused by Linear -> Tanh -> Linear (Hallmen et al., ABAW 2024/2025 EMI).

Each sequence stream (e.g. wav2vec2 states joined with per-frame VAD, 1027-d; ViT-Huge face
embeddings, the first 400 frames) runs through a 2-layer LSTM and contributes its last
hidden state; with ``global_mean`` the stream's mean vector over time is concatenated too
(the 2024 "global vector"). Pooled streams (a transcript embedding) are joined directly.
A modality a video lacks is replaced by a learned token. The paper's training (MSE, AdamW
lr 1e-4, cosine with warm-up, 30 epochs, batch 32, dropout 0.1, early stopping on
validation Pearson, outputs clipped to [0, 1]) is the registry's default for regression.
"""

from __future__ import annotations

import torch
from torch import nn

from affectstore.train.sequence.estimator import SequenceEstimator
from affectstore.train.sequence.layers import FusionHead, LSTMEncoder, MissingToken, masked_mean


class LSTMFusionNet(nn.Module):
    """One LSTM per sequence stream (+ optional mean vector), pooled streams as they are, fusion head."""

    def __init__(self, streams, dims, n_out: int, arch: dict, dropout: float, level: str):
        super().__init__()
        self.names = list(streams)
        self.pooled = {k for k, s in streams.items() if s.pooled}
        self.global_mean = bool(arch["global_mean"])
        self.encoders = nn.ModuleDict()
        self.missing = nn.ModuleDict()
        self.drop = nn.Dropout(dropout)
        width = 0
        for k in self.names:
            if k in self.pooled:
                out = dims[k]
            else:
                self.encoders[k] = LSTMEncoder(dims[k], int(arch["hidden"]), int(arch["layers"]), dropout)
                out = self.encoders[k].out_dim + (dims[k] if self.global_mean else 0)
            self.missing[k] = MissingToken(out)
            width += out
        self.head = FusionHead(width, int(arch["fusion_hidden"]), n_out, dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        parts = []
        for k in self.names:
            x, n = batch[k]
            if k in self.pooled:
                enc = x[:, 0]
            else:
                _, last = self.encoders[k](self.drop(x), n)
                enc = torch.cat([last, masked_mean(x, n)], dim=1) if self.global_mean else last
            parts.append(self.missing[k](enc, n))
        return self.head(self.drop(torch.cat(parts, dim=1)))


class LSTMFusion(SequenceEstimator):
    """Per-modality LSTM fusion; ``arch``: hidden (256), layers (2), fusion_hidden (256), global_mean (False)."""

    network = LSTMFusionNet
    arch_defaults = {"hidden": 256, "layers": 2, "fusion_hidden": 256, "global_mean": False}
