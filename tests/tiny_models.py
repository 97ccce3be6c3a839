"""Small models and data for training tests (no dropout surprises, fast)."""

import torch
from torch import nn

from tatumflow.models.protocol import StepOutput


class TinyConfig:
    def __init__(self, width: int = 8):
        self.width = width

    def to_dict(self):
        return {"width": self.width}


class TinyRegressor(nn.Module):
    family = "tiny"
    scalar_names = ("kl_weight",)

    def __init__(self, width: int = 8, dropout: float = 0.0):
        super().__init__()
        self.config = TinyConfig(width)
        self.emb = nn.Embedding(10, width)
        self.hidden = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, 1)
        self.drop = nn.Dropout(dropout)
        self.scalars = {}

    def forward(self, tok):
        return self.out(self.drop(torch.relu(self.norm(self.hidden(self.emb(tok)))))).squeeze(-1)

    def training_step(self, batch):
        loss = ((self(batch["tok"]) - batch["y"]) ** 2).mean()
        return StepOutput(loss, {"mse": float(loss.detach())}, n_items=len(batch["y"]))

    def validation_step(self, batch):
        loss = ((self(batch["tok"]) - batch["y"]) ** 2).mean()
        return StepOutput(loss, {"mse": float(loss)}, n_items=len(batch["y"]))


class TinyData(torch.utils.data.Dataset):
    scalar_names = ("seq_len",)

    def __init__(self, n: int = 64, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.tok = torch.randint(0, 10, (n,), generator=g)
        self.y = torch.sin(self.tok.float()) + 0.1 * torch.randn(n, generator=g)
        self.scalar_log = []

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"tok": self.tok[i], "y": self.y[i]}

    def set_scalar(self, name, value):
        self.scalar_log.append((name, value))
