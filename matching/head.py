"""The trained head of the matcher: a small residual projection after the visual tower, made by
``train_matcher`` (``matching.training``) and applied by the embedder (``matching.embedder``) to
every vector it makes. Its own module so that the embedder, which loads it from a checkpoint, and
the training, which uses the embedder, do not import each other.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualHead(nn.Module):
    """``x + W2 gelu(W1 x)``, W2 starting at zero: the identity until trained."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(nn.functional.gelu(self.fc1(x)))


def head_from_state(state: dict) -> ResidualHead:
    hidden, dim = state["fc1.weight"].shape
    head = ResidualHead(int(dim), int(hidden))
    head.load_state_dict({k: v.float() for k, v in state.items()})
    return head


def embed_with(head: nn.Module | None, features: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
    """The vectors the embedder makes from tower features: head, unit length, minus the centre
    (the probe's mean through the same head), unit length again."""
    f = nn.functional.normalize
    if head is not None:
        features, probe = f(head(features), dim=-1), f(head(probe), dim=-1)
    return f(features - probe.mean(dim=0), dim=-1)
