"""Known answers for the text methods' pure functions and the text data plan."""

from __future__ import annotations

import math

import pytest
import torch

from raylight.ssl.methods.mlm import masked_accuracy, masked_lm_loss
from raylight.ssl.methods.word2vec import keep_probability, sgns_loss, skipgram_pairs
from raylight.ssl.text.data import text_plan
from raylight.ssl.text.modeling import mean_pool, warmup_linear_decay


def test_masked_lm_loss_counts_only_masked_positions() -> None:
    logits = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [0.0, 0.0]]])  # (1, 3, 2)
    labels = torch.tensor([[-100, 0, 1]])
    # position 1: -log softmax([10, 0])[0] = log(1 + e^-10); position 2: log 2
    expected = (math.log1p(math.exp(-10)) + math.log(2)) / 2
    assert masked_lm_loss(logits, labels).item() == pytest.approx(expected, rel=1e-5)


def test_masked_accuracy_known_answer() -> None:
    logits = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]])
    labels = torch.tensor([[0, 0, 1, -100]])
    assert masked_accuracy(logits, labels).item() == pytest.approx(2 / 3)


def test_warmup_then_linear_decay() -> None:
    values = [warmup_linear_decay(s, total=10, warmup=2) for s in range(11)]
    assert values[:3] == [0.5, 1.0, 1.0]
    assert values[6] == pytest.approx(0.5) and values[10] == 0.0


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).item() == pytest.approx(2.0)


def test_sgns_loss_known_answer() -> None:
    c = torch.tensor([[1.0, 0.0]])
    o = torch.tensor([[2.0, 0.0]])  # u_o . v_c = 2
    k = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])  # u_k . v_c = 0, -1
    expected = -(math.log(1 / (1 + math.exp(-2))) + math.log(0.5) + math.log(1 / (1 + math.exp(-1))))
    assert sgns_loss(c, o, k).item() == pytest.approx(expected, rel=1e-6)


def test_skipgram_pairs_full_window_and_removed_tokens() -> None:
    ids = torch.tensor([[10, 11, 12, 13]])
    keep = torch.tensor([[True, False, True, True]])  # 11 subsampled away: 10 and 12 become neighbours
    gen = torch.Generator().manual_seed(0)
    centre, context = skipgram_pairs(ids, keep, window=1, generator=gen)  # window 1: reach is always 1
    pairs = sorted(zip(centre.tolist(), context.tolist(), strict=True))
    assert pairs == [(10, 12), (12, 10), (12, 13), (13, 12)]


def test_keep_probability_follows_word2vec() -> None:
    counts = torch.tensor([0.0, 900.0, 100.0])
    p = keep_probability(counts, 0.01)
    assert p[0] == 1.0  # never seen
    assert p[1].item() == pytest.approx(math.sqrt(0.01 / 0.9))
    assert p[2].item() == pytest.approx(math.sqrt(0.01 / 0.1))
    assert torch.all(keep_probability(counts, 0.0) == 1)


def test_text_plan_gives_equal_full_batches() -> None:
    assert text_plan([10, 3], batch_size=4, steps=3) == [[4, 4], [3]]  # the fullest reader gives first
    assert text_plan([8, 8], batch_size=4, steps=4) == [[4, 4], [4, 4]]
    assert text_plan([2], batch_size=4, steps=1) == [[2]]


def test_readers_are_replaced_by_the_pool_never_restarted_by_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 115 KB tokenizer goes through Ray's object store; with max_restarts > 0 Ray logged 'has constructor
    arguments in the object store and max_restarts > 0 ... restart will fail' for every text run. One restart
    policy for every reader (and rollout worker): the pool's own replacement."""
    from types import SimpleNamespace

    import raylight.core.actors as actors
    from raylight.core.config import load_config
    from raylight.ssl.shards import ShardGroup, ShardReader
    from raylight.ssl.text.sources import LabelledTextReader, TextShardReader
    from tests.ssl.conftest import CONFIGS

    seen: list[dict] = []

    class FakeRemote:
        def options(self, **kw):
            seen.append(kw)
            return self

        def remote(self, *args):
            return None

    monkeypatch.setattr(actors, "remote_class", lambda cls: FakeRemote())
    monkeypatch.setattr(actors, "wait_ready", lambda *a, **k: None)
    monkeypatch.setattr(actors, "ActorPlacement", lambda *a, **k: SimpleNamespace(options=lambda i: {}, remove=lambda: None))
    cfg = load_config(CONFIGS / "mlm-python-docs.yaml")
    for cls in (TextShardReader, LabelledTextReader, ShardReader):
        ShardGroup(cfg.data.model_copy(update={"num_readers": 1}), "train", 0, reader_cls=cls, reader_args=("{}", "mlm"))
    assert [(kw["max_restarts"], kw["max_task_retries"]) for kw in seen] == [(0, 0)] * 3
