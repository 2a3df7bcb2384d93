"""``tcn-qam``: TCN + gated BiLSTM encoders, quality-aware modality weights, Transformer fusion
(Yu et al., ABAW 2025, emotional mimicry intensity).

- face streams (provenance input ``faces``/``frames``): a dilated TCN, then segment-wise average
  pooling into ``segments`` tokens;
- audio and other timed streams: a BiLSTM whose states are gated by
  ``sigmoid(W [h_t ; h_t - h_{t-1}])`` (the change between steps tells the gate where
  something happens), then the same segment pooling;
- pooled streams (a transcript vector): one token;
- each modality has a mapping MLP into the shared ``d_model`` space; the quality-aware module
  scores each modality from its mean token and turns the scores into softmax weights over
  the modalities present (a missing modality gets weight 0 and its learned missing tokens),
  which scale that modality's tokens;
- a Transformer encoder over all tokens (plus learned modality and segment-position embeddings), mean-pooled,
  then a linear layer to the outputs.

The paper's MSE loss, EMA of the weights (0.999) and cosine schedule with warm restarts are
the registry's defaults.
"""

from __future__ import annotations

import torch
from torch import nn

from affectstore.train.sequence.estimator import SequenceEstimator
from affectstore.train.sequence.layers import TCN, LSTMEncoder, MissingToken, segment_mean


class GatedBiLSTM(nn.Module):
    """BiLSTM with the difference gate sigmoid(W [h_t ; h_t - h_{t-1}]) on its states."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.lstm = LSTMEncoder(dim, hidden, layers=1, dropout=dropout, bidirectional=True)
        self.gate = nn.Linear(4 * hidden, 2 * hidden)
        self.out_dim = 2 * hidden

    def forward(self, x, lengths):
        h, _ = self.lstm(x, lengths)
        prev = torch.cat([h[:, :1], h[:, :-1]], dim=1)  # h_{t-1}, the first step its own predecessor
        return torch.sigmoid(self.gate(torch.cat([h, h - prev], dim=-1))) * h


class TCNQAMNet(nn.Module):
    """Encoders per modality -> mapping MLPs -> quality-aware weights -> Transformer -> outputs."""

    def __init__(self, streams, dims, n_out: int, arch: dict, dropout: float, level: str):
        super().__init__()
        d, hidden = int(arch["d_model"]), int(arch["hidden"])
        self.names = list(streams)
        self.segments = int(arch["segments"])
        self.kind = {}
        self.encoders = nn.ModuleDict()
        self.maps = nn.ModuleDict()
        self.missing = nn.ModuleDict()
        for k, s in streams.items():
            if s.pooled:
                self.kind[k], width = "vector", dims[k]
            elif k in arch["tcn_streams"]:
                self.kind[k] = "tcn"
                self.encoders[k] = TCN(dims[k], hidden, int(arch["tcn_levels"]), 3, dropout)
                width = hidden
            else:
                self.kind[k] = "bilstm"
                self.encoders[k] = GatedBiLSTM(dims[k], hidden // 2, dropout)
                width = self.encoders[k].out_dim
            self.maps[k] = nn.Sequential(nn.Linear(width, d), nn.GELU(), nn.Dropout(dropout), nn.Linear(d, d), nn.LayerNorm(d))
            self.missing[k] = MissingToken(d)
        self.quality = nn.Sequential(nn.Linear(d, d // 2), nn.Tanh(), nn.Linear(d // 2, 1))
        self.modality = nn.Parameter(torch.zeros(len(self.names), d))
        # Segment positions: without them the Transformer and the mean over tokens could not tell
        # early segments from late ones, i.e. they would see no more than pooling does.
        self.position = nn.Parameter(0.02 * torch.randn(self.segments, d))
        layer = nn.TransformerEncoderLayer(d, int(arch["heads"]), 2 * d, dropout, batch_first=True, activation="gelu",
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, int(arch["layers"]), enable_nested_tensor=False)
        self.out = nn.Linear(d, n_out)

    def forward(self, batch: dict) -> torch.Tensor:
        tokens, scores, present = [], [], []
        for i, k in enumerate(self.names):
            x, n = batch[k]
            if self.kind[k] == "vector":
                t = self.maps[k](x[:, :1])
            else:
                t = self.maps[k](segment_mean(self.encoders[k](x, n), n, self.segments)) + self.position
            t = self.missing[k](t, n) + self.modality[i]
            tokens.append(t)
            scores.append(self.quality(t.mean(dim=1)))  # (B, 1)
            present.append(n > 0)
        s = torch.cat(scores, dim=1)
        have = torch.stack(present, dim=1)
        # Softmax over the modalities present; an item with none keeps uniform weights on the tokens.
        s = torch.where(have | ~have.any(dim=1, keepdim=True), s, torch.finfo(s.dtype).min)
        w = torch.softmax(s, dim=1)
        seq = torch.cat([t * w[:, i, None, None] * len(self.names) for i, t in enumerate(tokens)], dim=1)
        return self.out(self.transformer(seq).mean(dim=1))


class TCNQAM(SequenceEstimator):
    """TCN + gated BiLSTM + quality-aware fusion; ``arch``: d_model (128), hidden (128), segments (8),
    tcn_levels (3), heads (4), layers (2), tcn_streams (names encoded by the TCN; default: face streams)."""

    network = TCNQAMNet
    arch_defaults = {"d_model": 128, "hidden": 128, "segments": 8, "tcn_levels": 3, "heads": 4, "layers": 2,
                     "tcn_streams": []}

    def resolve_arch(self, view, streams) -> dict:
        """Face streams (by their first feature's provenance ``input``) go to the TCN unless ``tcn_streams`` says."""
        if (self.arch or {}).get("tcn_streams"):
            return {}
        infos = view.source.infos
        return {"tcn_streams": [k for k, s in streams.items()
                                if not s.pooled and infos[s.features[0]].input in ("faces", "frames")]}
