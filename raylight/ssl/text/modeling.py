"""What BERT-based text modules share: size presets from the agent config, the checkpoint record that
makes a checkpoint self-contained (BERT config + tokenizer), AdamW groups and the warm-up schedule,
mean pooling."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from raylight.ssl.methods.base import PretrainModule


class BertSizeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    size: Literal["tiny", "mini", "small", "medium", "base"] = Field("tiny", description="BERT size: tiny (2x128) ... base (12x768); the fields below override it.")
    num_hidden_layers: int | None = Field(None, ge=1, description="Transformer layers (None: the size's).")
    hidden_size: int | None = Field(None, ge=8, description="Hidden width (None: the size's); a multiple of num_attention_heads.")
    num_attention_heads: int | None = Field(None, ge=1, description="Attention heads (None: the size's).")
    intermediate_size: int | None = Field(None, ge=8, description="Feed-forward width (None: the size's).")
    dropout: float = Field(0.1, ge=0, lt=1, description="Hidden and attention dropout.")


def warmup_linear_decay(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: 0 -> 1 over ``warmup`` steps, then 1 -> 0 at ``total``."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    return max(0.0, (total - step) / max(total - warmup, 1))


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and LayerNorm weights (BERT's recipe)."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors under ``mask``: (B, L, H), (B, L) -> (B, H)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


class BertTextModule(PretrainModule):
    """What text modules share: a BERT config from the agent's size, the tokenizer in checkpoints,
    mean-pooled embeddings for probes."""

    reader_mode: ClassVar[str] = "mlm"

    def bert_config(self) -> Any:
        from raylight.ssl.text.bert import bert_config

        hp = self.hp
        return bert_config(
            hp.size, self.info.vocab_size, self.cfg.data.max_length, self.info.pad_id, hp.dropout,
            num_hidden_layers=hp.num_hidden_layers, hidden_size=hp.hidden_size,
            num_attention_heads=hp.num_attention_heads, intermediate_size=hp.intermediate_size,
        )

    def text_record(self, config: Any, prefix: str) -> dict[str, Any]:
        from raylight.ssl.text.bert import config_record

        return {"bert_config": config_record(config), "tokenizer": self.info.tokenizer_json, "prefix": prefix,
                "class_names": list(self.info.class_names), "max_length": self.cfg.data.max_length}

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(decay_groups(self, self.hp.weight_decay), lr=self.hp.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(getattr(self.hp, "warmup_fraction", 0.0) * total)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_linear_decay(step, total, warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


