"""Torch building blocks shared by the sequence models: masks, pooling, LSTM and TCN encoders,
missing-modality tokens and the fusion head."""

from __future__ import annotations

import torch
from torch import nn


def lengths_mask(lengths: torch.Tensor, t_max: int) -> torch.Tensor:
    """(B, T) bool, True at real (not padded) steps."""
    return torch.arange(t_max, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the real steps of (B, T, D); zeros for items of length 0."""
    m = lengths_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def segment_mean(x: torch.Tensor, lengths: torch.Tensor, n_segments: int) -> torch.Tensor:
    """(B, S, D): the real steps of each item cut into ``n_segments`` equal spans, each averaged.

    An item shorter than S repeats its steps; an empty item gives zeros.
    """
    b, t, _ = x.shape
    L = lengths.clamp(min=1).to(x.dtype)
    pos = torch.arange(t, device=x.device, dtype=x.dtype)[None, :]
    seg = torch.clamp((pos * n_segments / L[:, None]).floor().long(), max=n_segments - 1)  # (B, T)
    real = lengths_mask(lengths, t)
    onehot = nn.functional.one_hot(seg, n_segments).to(x.dtype) * real.unsqueeze(-1).to(x.dtype)  # (B, T, S)
    sums = torch.einsum("bts,btd->bsd", onehot, x)
    counts = onehot.sum(1).unsqueeze(-1)
    out = sums / counts.clamp(min=1.0)
    # Segments with no step of their own (items shorter than S) take the nearest step.
    empty = counts.squeeze(-1) == 0
    if empty.any():
        centre = ((torch.arange(n_segments, device=x.device, dtype=x.dtype)[None, :] + 0.5) * L[:, None] / n_segments)
        idx = centre.floor().long().clamp(max=t - 1)
        gathered = torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        out = torch.where(empty.unsqueeze(-1), gathered, out)
    return out


class MissingToken(nn.Module):
    """Replaces the encoding of items that lack a modality (length 0) by a learned vector."""

    def __init__(self, dim: int):
        super().__init__()
        self.token = nn.Parameter(torch.zeros(dim))

    def forward(self, enc: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        missing = (lengths == 0).view(-1, *([1] * (enc.dim() - 1)))
        return torch.where(missing, self.token.to(enc.dtype).expand_as(enc), enc)


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each item's real steps in reverse order (padding stays at the end); its own inverse."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    L = lengths.clamp(min=1)[:, None]
    idx = torch.where(t < L, L - 1 - t, t)
    return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def at_last(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, D): each item's output at its last real step."""
    idx = (lengths.clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, x.shape[2])
    return torch.gather(x, 1, idx)[:, 0]


class LSTMEncoder(nn.Module):
    """Multi-layer (Bi)LSTM over padded input; ``forward`` gives all steps and the last real hidden state.

    Padded steps come after the real ones, so a forward LSTM's outputs up to an item's length
    do not depend on them; the backward direction runs a forward LSTM over each item's
    reversed real steps. This avoids PackedSequence, whose backward pass on CPU re-zeroes the
    whole packed input at every time step (seconds per step at 1027-d x 600 frames).
    """

    def __init__(self, dim: int, hidden: int, layers: int = 2, dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        self.bidirectional = bidirectional
        self.layers = layers
        if bidirectional:
            self.fwd = nn.ModuleList([nn.LSTM(dim if i == 0 else 2 * hidden, hidden, batch_first=True) for i in range(layers)])
            self.bwd = nn.ModuleList([nn.LSTM(dim if i == 0 else 2 * hidden, hidden, batch_first=True) for i in range(layers)])
            self.drop = nn.Dropout(dropout)
        else:
            self.lstm = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.out_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        real = lengths_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
        if not self.bidirectional:
            steps, _ = self.lstm(x)
            return steps * real, at_last(steps, lengths)
        h = x
        for i in range(self.layers):
            f, _ = self.fwd[i](h)
            b_rev, _ = self.bwd[i](reverse_valid(h, lengths))
            last = torch.cat([at_last(f, lengths), at_last(b_rev, lengths)], dim=1)
            h = torch.cat([f, reverse_valid(b_rev, lengths)], dim=-1) * real
            if i < self.layers - 1:
                h = self.drop(h)
        return h, last


class TCN(nn.Module):
    """Residual 1-D convolutions with growing dilation (kernel ``k``, dilations 1, 2, 4, ...), 'same' length."""

    def __init__(self, dim: int, hidden: int, levels: int = 3, kernel: int = 3, dropout: float = 0.0):
        super().__init__()
        self.inp = nn.Conv1d(dim, hidden, 1)
        self.blocks = nn.ModuleList()
        for i in range(levels):
            d = 2 ** i
            self.blocks.append(nn.Sequential(
                nn.Conv1d(hidden, hidden, kernel, dilation=d, padding=d * (kernel - 1) // 2),
                nn.GELU(), nn.Dropout(dropout)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        m = lengths_mask(lengths, x.shape[1]).unsqueeze(1).to(x.dtype)  # (B, 1, T)
        h = self.inp(x.transpose(1, 2)) * m
        for block in self.blocks:
            h = (h + block(h)) * m  # padded steps stay zero so they never leak into real ones
        return h.transpose(1, 2)


class FusionHead(nn.Module):
    """Linear -> Tanh -> Dropout -> Linear (the papers' fusion layer)."""

    def __init__(self, dim: int, hidden: int, n_out: int, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
