"""Fine-tuning: a classification or regression head on any pretrained encoder.

Modes: ``linear_probe`` (encoder frozen), ``full`` (everything trains), ``gradual`` (ULMFiT-style,
Howard & Ruder 2018, https://arxiv.org/abs/1801.06146: the head first, then one encoder layer group
more every ``unfreeze_every`` epochs, top down). Encoder and head have separate learning rates.
Frozen-in-``gradual`` groups keep ``requires_grad`` and get a learning rate of 0, so DDP sees the
same parameters every step.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from raylight.core.errors import ConfigError
from raylight.core.registry import register_algorithm
from raylight.models.encoders import EncoderConfig, encoder_from_config
from raylight.ssl.config import SSLExperimentConfig
from raylight.ssl.datasets import DatasetInfo
from raylight.ssl.methods.base import PretrainModule
from raylight.ssl.shards import ShardBatch
from raylight.ssl.task import FINETUNE_TASK


class HeadConfig(BaseModel):
    """The head and which encoder parameters train: shared by every fine-tuning algorithm (vision and text)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    head: Literal["linear", "mlp"] = Field("linear", description="Head on the encoder features.")
    head_hidden: int = Field(128, ge=1, description="mlp head: hidden width.")
    mode: Literal["linear_probe", "full", "gradual"] = Field("full", description="Which encoder parameters train (see module doc).")
    unfreeze_every: int = Field(1, ge=1, description="gradual: epochs between unfreezing one more encoder layer group (top first).")
    encoder_lr: float = Field(3e-4, ge=0, description="AdamW learning rate of the encoder.")
    head_lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the head.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")


class FineTuneConfig(HeadConfig):
    checkpoint: str | None = Field(None, description="Pretrained encoder: a raylight run dir/checkpoint or an exported .safetensors (`--from`).")
    encoder: EncoderConfig | None = Field(None, description="Encoder to train from scratch; with a checkpoint, None takes the checkpoint's.")
    task: Literal["classification", "regression"] = Field("classification", description="Cross-entropy on class ids, or MSE on float targets.")


class LinearHead(nn.Module):
    """Features (B, F) -> outputs (B, K)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)


class MLPHead(nn.Module):
    """Features (B, F) -> Linear-ReLU-Linear -> outputs (B, K)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


def build_finetune_encoder(hp: FineTuneConfig, info: DatasetInfo) -> nn.Module:
    """The encoder to fine-tune: loaded from ``hp.checkpoint`` (checked to fit), or fresh from ``hp.encoder``."""
    if hp.checkpoint is None:
        if hp.encoder is None:
            raise ConfigError("agent: finetune needs a pretrained encoder (--from / agent.checkpoint) or agent.encoder to train from scratch")
        return encoder_from_config(hp.encoder, info.sample_shape)
    from raylight.models.encoder_io import load_encoder

    arch = None if hp.encoder is None else encoder_from_config(hp.encoder, info.sample_shape).arch
    return load_encoder(hp.checkpoint, expect_arch=arch, in_shape=info.sample_shape)


def encoder_param_groups(encoder: nn.Module) -> list[list[nn.Parameter]]:
    """Parameters per layer group, bottom to top; parameters outside any group join the top one."""
    groups = [list(g.parameters()) for g in encoder.layer_groups()]
    grouped = {id(p) for g in groups for p in g}
    groups[-1] += [p for p in encoder.parameters() if id(p) not in grouped]
    return groups


@register_algorithm("finetune", FineTuneConfig, FINETUNE_TASK)
class FineTune(PretrainModule):
    """Head on a pretrained encoder; checkpoint encoder record, ``embed`` and logging come from PretrainModule."""

    def __init__(self, cfg: SSLExperimentConfig, info: DatasetInfo) -> None:
        super().__init__(cfg, info)
        hp: FineTuneConfig = cfg.agent
        if getattr(hp, "task", "classification") == "classification" and info.num_classes < 2:
            raise ConfigError(f"agent.task: classification needs integer labels of at least 2 classes; {cfg.subject!r} has {info.num_classes}")
        self.encoder = self.build_encoder(hp, info)
        out_dim = info.num_classes if getattr(hp, "task", "classification") == "classification" else 1
        feat = self.encoder.out_dim
        self.head = LinearHead(feat, out_dim) if hp.head == "linear" else MLPHead(feat, hp.head_hidden, out_dim)
        if hp.mode == "linear_probe":
            self.encoder.requires_grad_(False)

    def build_encoder(self, hp: Any, info: Any) -> nn.Module:
        return build_finetune_encoder(hp, info)

    def forward(self, x: Any) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, K) logits or (B, 1) predictions

    def model_input(self, batch: Any) -> Any:
        """What ``forward`` takes from a batch (arrays: the inputs; text: the whole ``TextBatch``)."""
        return batch.inputs

    def loss_and_metrics(self, outputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        if getattr(self.hp, "task", "classification") == "classification":
            loss = F.cross_entropy(outputs, labels.long())
            return {"loss": loss, "accuracy": (outputs.argmax(1) == labels).float().mean()}
        return {"loss": F.mse_loss(outputs.squeeze(1), labels.float())}

    def losses(self, batch: ShardBatch) -> dict[str, torch.Tensor]:
        if self.hp.mode == "linear_probe":
            self.encoder.eval()  # frozen: no dropout / batch-norm updates should it ever have them
        return self.loss_and_metrics(self(self.model_input(batch)), batch.labels)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups: list[dict[str, Any]] = [{"params": list(self.head.parameters()), "lr": self.hp.head_lr, "name": "head"}]
        if self.hp.mode != "linear_probe":
            for i, params in enumerate(encoder_param_groups(self.encoder)):
                groups.append({"params": params, "lr": self.hp.encoder_lr, "name": f"encoder{i}"})
        return torch.optim.AdamW(groups, weight_decay=self.hp.weight_decay)

    def unfrozen_groups(self, epoch: int) -> int:
        """How many encoder layer groups (from the top) train in this epoch."""
        n = len(self.encoder.layer_groups())
        if self.hp.mode == "full":
            return n
        if self.hp.mode == "linear_probe":
            return 0
        return min(n, epoch // self.hp.unfreeze_every)

    def on_train_epoch_start(self) -> None:
        if self.hp.mode != "gradual":
            return
        optimizer = self.optimizers().optimizer if hasattr(self.optimizers(), "optimizer") else self.optimizers()
        enc_groups = [g for g in optimizer.param_groups if g.get("name", "").startswith("encoder")]
        first_trained = len(enc_groups) - self.unfrozen_groups(self.current_epoch)
        for i, group in enumerate(enc_groups):
            group["lr"] = self.hp.encoder_lr if i >= first_trained else 0.0
        self.log("train/unfrozen_groups", float(len(enc_groups) - first_trained), on_step=False, on_epoch=True)
