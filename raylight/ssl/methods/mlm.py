"""BERT masked-language modelling (+ optional next-sentence prediction), Devlin et al. 2019,
https://arxiv.org/abs/1810.04805, on Hugging Face ``transformers`` (``BertForMaskedLM`` /
``BertForPreTraining``) so the encoder is an ordinary ``BertModel`` that the ecosystem loads.

Per step: the readers have already masked 15% of the tokens (80% [MASK], 10% random, 10% kept, new each
epoch); the loss is cross-entropy over masked positions (+ NSP cross-entropy on sentence pairs); AdamW
with linear warm-up then linear decay, the recipe BERT was trained with.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from raylight.core.registry import register_algorithm
from raylight.ssl.text.batch import TextBatch
from raylight.ssl.text.modeling import BertSizeConfig, BertTextModule, mean_pool
from raylight.ssl.text.task import TEXT_PRETRAIN_TASK


class MLMConfig(BertSizeConfig):
    lr: float = Field(5e-4, gt=0, description="AdamW peak learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases and LayerNorm weights).")
    warmup_fraction: float = Field(0.06, ge=0, lt=1, description="Fraction of all steps with linear warm-up; linear decay to 0 after.")


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions whose label is not -100: (..., V), (...) -> scalar."""
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)


def masked_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    at = labels != -100
    return (logits.argmax(-1)[at] == labels[at]).float().mean() if at.any() else logits.new_zeros(())


@register_algorithm("mlm", MLMConfig, TEXT_PRETRAIN_TASK)
class MaskedLanguageModel(BertTextModule):
    """BERT with its pretraining heads; ``self.model.bert`` is the encoder that fine-tuning and export take."""

    def __init__(self, cfg: Any, info: Any) -> None:
        super().__init__(cfg, info)
        from transformers import BertForMaskedLM, BertForPreTraining

        config = self.bert_config()
        self.nsp = cfg.data.next_sentence
        self.model = BertForPreTraining(config) if self.nsp else BertForMaskedLM(config)
        self.encoder = self.model.bert

    def mlm_logits(self, batch: TextBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, L, V) token logits and (B, 2) next-sentence logits (None without NSP): the full heads, for evaluation."""
        out = self.model(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids, attention_mask=batch.attention_mask)
        if self.nsp:
            return out.prediction_logits, out.seq_relationship_logits
        return out.logits, None

    def masked_logits(self, batch: TextBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Logits only where a token was masked (M, V), their labels (M,), NSP logits: the vocabulary
        projection is most of a small BERT's compute, and 85% of it would be thrown away."""
        out = self.encoder(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids, attention_mask=batch.attention_mask)
        at = batch.labels != -100
        heads = self.model.cls
        logits = heads.predictions(out.last_hidden_state[at])
        nsp_logits = heads.seq_relationship(out.pooler_output) if self.nsp else None
        return logits, batch.labels[at], nsp_logits

    def losses(self, batch: TextBatch) -> dict[str, torch.Tensor]:
        logits, labels, nsp_logits = self.masked_logits(batch)
        mlm = masked_lm_loss(logits, labels)
        out = {"mlm": mlm, "masked_accuracy": masked_accuracy(logits.detach(), labels)}
        if nsp_logits is not None:
            out["nsp"] = torch.nn.functional.cross_entropy(nsp_logits.float(), batch.next_sentence_label)
            out["nsp_accuracy"] = (nsp_logits.detach().argmax(-1) == batch.next_sentence_label).float().mean()
            out["loss"] = mlm + out["nsp"]
        else:
            out["loss"] = mlm
        return out

    @torch.no_grad()
    def embed(self, batch: TextBatch) -> torch.Tensor:
        hidden = self.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        return mean_pool(hidden, batch.attention_mask)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from raylight.ssl.text.bert import TEXT_RECORD_KEY

        checkpoint[TEXT_RECORD_KEY] = self.text_record(self.model.config, "model.bert.")
