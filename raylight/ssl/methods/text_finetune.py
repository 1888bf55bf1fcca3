"""Fine-tuning a BERT encoder for text classification, through the shared fine-tuning path
(``finetune.FineTune``: linear / MLP head, linear probe, full, gradual unfreezing, separate learning rates).

The encoder comes from a raylight MLM run, from any local Hugging Face BERT directory (``--from DIR``),
or is built fresh at a configured size (the from-scratch baseline). Features are the mean of the last
layer's token vectors (``pooling: mean``), the [CLS] vector, or BERT's pooler (trained by NSP only).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from raylight.core.registry import register_algorithm
from raylight.ssl.methods.finetune import FineTune, HeadConfig
from raylight.ssl.text.batch import TextBatch
from raylight.ssl.text.modeling import BertSizeConfig, BertTextModule, mean_pool
from raylight.ssl.text.task import TEXT_FINETUNE_TASK


class TextFineTuneConfig(HeadConfig, BertSizeConfig):
    checkpoint: str | None = Field(None, description="Pretrained BERT: a raylight mlm run dir / .ckpt, or a Hugging Face BERT directory (`--from`); None: train from scratch at `size`.")
    pooling: Literal["mean", "cls", "pooler"] = Field("mean", description="Sentence features: mean of token vectors, the [CLS] vector, or BERT's pooler output.")
    encoder_lr: float = Field(5e-5, ge=0, description="AdamW learning rate of the encoder (BERT fine-tuning: 2e-5 to 1e-4).")
    head_lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the head.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")


class BertEncoder(nn.Module):
    """A ``BertModel`` as a fine-tuning encoder: ``TextBatch`` -> (B, hidden) features, layer groups bottom up."""

    def __init__(self, bert: Any, pooling: str) -> None:
        super().__init__()
        self.bert = bert
        self.pooling = pooling
        self.out_dim = int(bert.config.hidden_size)

    def forward(self, batch: TextBatch) -> torch.Tensor:
        out = self.bert(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids, attention_mask=batch.attention_mask)
        if self.pooling == "pooler":
            return out.pooler_output
        if self.pooling == "cls":
            return out.last_hidden_state[:, 0]
        return mean_pool(out.last_hidden_state, batch.attention_mask)

    def layer_groups(self) -> list[nn.Module]:
        """Embeddings, then each transformer layer (the pooler joins the top group)."""
        return [self.bert.embeddings, *self.bert.encoder.layer]


@register_algorithm("text_finetune", TextFineTuneConfig, TEXT_FINETUNE_TASK)
class TextFineTune(FineTune):
    reader_mode: ClassVar[str] = "labelled"
    bert_config = BertTextModule.bert_config
    text_record = BertTextModule.text_record

    def build_encoder(self, hp: TextFineTuneConfig, info: Any) -> nn.Module:
        from raylight.ssl.text.bert import build_encoder

        if info.pretrained is not None:
            bert = build_encoder(info.pretrained.config, info.pretrained.state, info.pretrained.source)
        else:
            bert = build_encoder(self.bert_config(), None, "scratch")
        return BertEncoder(bert, hp.pooling)

    def model_input(self, batch: TextBatch) -> TextBatch:
        return batch

    def losses(self, batch: TextBatch) -> dict[str, torch.Tensor]:
        if self.hp.mode == "linear_probe":
            self.encoder.eval()  # frozen: no dropout
        return self.loss_and_metrics(self(batch), batch.labels)

    @torch.no_grad()
    def embed(self, batch: TextBatch) -> torch.Tensor:
        return self.encoder(batch)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from raylight.ssl.text.bert import TEXT_RECORD_KEY

        checkpoint[TEXT_RECORD_KEY] = self.text_record(self.encoder.bert.config, "encoder.bert.")
