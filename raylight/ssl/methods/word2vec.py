"""word2vec: skip-gram with negative sampling (Mikolov et al. 2013, https://arxiv.org/abs/1310.4546)
on the same tokenized text shards as MLM.

Per batch of packed sequences: drop frequent tokens with probability 1 - sqrt(t / f) (subsampling),
give every centre a window b ~ U{1..window} (dynamic window), take every (centre, context) pair within
it, draw ``negatives`` noise tokens per pair from the unigram distribution to the 3/4 power, and minimise
-log s(u_o . v_c) - sum_k log s(-u_k . v_c). Token counts come from the readers (summed over ranks).
The input embeddings are the result (``raylight export`` writes them in word2vec's text format).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F

from raylight.core.registry import register_algorithm
from raylight.ssl.methods.base import PretrainModule
from raylight.ssl.text.batch import TextBatch
from raylight.ssl.text.task import TEXT_PRETRAIN_TASK


class Word2VecConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    embedding_dim: int = Field(128, ge=2, description="Vector size.")
    window: int = Field(5, ge=1, description="Largest distance between centre and context (each centre draws its own 1..window).")
    negatives: int = Field(5, ge=1, description="Noise tokens per (centre, context) pair.")
    subsample: float = Field(1e-3, ge=0, description="Subsampling threshold t: a token of frequency f is kept with probability min(1, sqrt(t / f)); 0 keeps all.")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")


def sgns_loss(center: torch.Tensor, context: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Skip-gram negative-sampling loss, mean over pairs: (P, D) centre and context vectors, (P, K, D) noise."""
    pos = F.logsigmoid((center * context).sum(-1))  # (P,)
    neg = F.logsigmoid(-torch.einsum("pkd,pd->pk", noise, center)).sum(-1)  # (P,)
    return -(pos + neg).mean()


def keep_probability(counts: torch.Tensor, threshold: float) -> torch.Tensor:
    """(V,) probability of keeping each token: min(1, sqrt(t / f)), f its relative frequency; never-seen tokens 1."""
    if threshold <= 0:
        return torch.ones_like(counts)
    freq = counts / counts.sum().clamp_min(1)
    return torch.where(freq > 0, torch.sqrt(threshold / freq.clamp_min(1e-12)).clamp(max=1.0), torch.ones_like(freq))


def skipgram_pairs(ids: torch.Tensor, keep: torch.Tensor, window: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre, context) id pairs from (B, L) sequences, ``keep`` (B, L) the tokens that survive subsampling
    (dropped ones are removed first, so the window reaches past them as in word2vec)."""
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    ids, keep = ids.gather(1, order), keep.gather(1, order)
    reach = torch.randint(1, window + 1, ids.shape, device=ids.device, generator=generator)  # (B, L) dynamic window
    centres, contexts = [], []
    for o in range(1, min(window, ids.shape[1] - 1) + 1):
        both = keep[:, :-o] & keep[:, o:]
        fwd = both & (reach[:, :-o] >= o)  # centre left, context o to its right
        bwd = both & (reach[:, o:] >= o)  # centre right, context o to its left
        centres += [ids[:, :-o][fwd], ids[:, o:][bwd]]
        contexts += [ids[:, o:][fwd], ids[:, :-o][bwd]]
    return torch.cat(centres), torch.cat(contexts)


@register_algorithm("word2vec", Word2VecConfig, TEXT_PRETRAIN_TASK)
class Word2Vec(PretrainModule):
    reader_mode: ClassVar[str] = "plain"

    def __init__(self, cfg: Any, info: Any) -> None:
        super().__init__(cfg, info)
        hp: Word2VecConfig = cfg.agent
        self.in_embed = nn.Embedding(info.vocab_size, hp.embedding_dim)
        self.out_embed = nn.Embedding(info.vocab_size, hp.embedding_dim)
        nn.init.uniform_(self.in_embed.weight, -0.5 / hp.embedding_dim, 0.5 / hp.embedding_dim)
        nn.init.zeros_(self.out_embed.weight)  # as the reference C implementation
        self.register_buffer("counts", torch.zeros(info.vocab_size, dtype=torch.float64))
        self.encoder = self.in_embed

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "token_counts"):
            from tokenizers import Tokenizer

            from raylight.ssl.text.tokenizer import SpecialIds

            counts = datamodule.token_counts().to(self.counts.device)
            counts[SpecialIds.from_tokenizer(Tokenizer.from_str(self.info.tokenizer_json)).all] = 0  # never centres, contexts or noise
            self.counts.copy_(counts)

    def losses(self, batch: TextBatch) -> dict[str, torch.Tensor]:
        counts = self.counts.float()
        real = batch.attention_mask.bool() & (counts[batch.input_ids] > 0)
        keep = real & (torch.rand(batch.input_ids.shape, device=self.device) < keep_probability(counts, self.hp.subsample)[batch.input_ids])
        centre, context = skipgram_pairs(batch.input_ids, keep, self.hp.window)
        noise_dist = counts.pow(0.75)
        noise = torch.multinomial(noise_dist / noise_dist.sum(), centre.numel() * self.hp.negatives, replacement=True)
        loss = sgns_loss(self.in_embed(centre), self.out_embed(context), self.out_embed(noise.view(-1, self.hp.negatives)))
        return {"loss": loss, "pairs": torch.tensor(float(centre.numel()), device=self.device)}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hp.lr, weight_decay=self.hp.weight_decay)

    @torch.no_grad()
    def embed(self, batch: TextBatch) -> torch.Tensor:
        """Sentence features: the mean input vector of the tokens word2vec trained on (specials excluded)."""
        use = batch.attention_mask.bool() & (self.counts[batch.input_ids] > 0)
        vecs = self.in_embed(batch.input_ids) * use.unsqueeze(-1)
        return vecs.sum(1) / use.sum(1, keepdim=True).clamp_min(1)

    @torch.no_grad()
    def neighbours(self, token_ids: list[int], k: int = 5) -> list[list[int]]:
        """The ``k`` nearest tokens (cosine) to each of ``token_ids``, among tokens seen in training."""
        w = F.normalize(self.in_embed.weight, dim=1)
        sims = w[token_ids] @ w.T
        sims[:, self.counts == 0] = -2
        sims[torch.arange(len(token_ids)), token_ids] = -2
        return sims.topk(k, dim=1).indices.tolist()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        from raylight.ssl.text.bert import TEXT_RECORD_KEY

        checkpoint[TEXT_RECORD_KEY] = {"format": "word2vec", "tokenizer": self.info.tokenizer_json, "prefix": "in_embed.",
                                       "max_length": self.cfg.data.max_length}
