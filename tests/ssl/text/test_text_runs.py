"""Text experiments end to end through the CLI: MLM on the built-in corpus (reader actors tokenizing),
fine-tuning from it and from a Hugging Face directory, export, word2vec, 2-rank Ray Train, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from raylight.core.cli import main  # noqa: E402
from tests.ssl.conftest import CONFIGS  # noqa: E402

QUICK = ["trainer.progress_bar=false", "tracking.backend=csv", "data.vocab_size=2000", "data.max_length=64"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One corpus / tokenizer cache for the module (built once, like a user's ~/.cache/raylight)."""
    return str(tmp_path_factory.mktemp("text-cache"))


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> dict:
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    return json.loads(captured.out)


def write_corpus(corpus: Path, files: int = 8, docs_per_file: int = 20) -> Path:
    """A small corpus of many files: 3-line documents of random words, blank lines between documents."""
    corpus.mkdir()
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex jumbo boxes".split()
    rng = np.random.default_rng(0)
    for i in range(files):
        docs = ["\n".join(" ".join(rng.choice(words, 12)) for _ in range(3)) for _ in range(docs_per_file)]
        (corpus / f"part-{i}.txt").write_text("\n\n".join(docs) + "\n")
    return corpus


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: str) -> Path:
    """MLM on python-docs: one epoch of a tiny BERT on short sequences (1,057 steps of 16 x 32 tokens; ~75 s on 2
    busy cores). Read in-process: with 2 reader actors competing for the same 2 cores it took 10x longer;
    tokenizing in actors is checked against in-process by ``test_tokenization_in_actors_matches_in_process``."""
    root = tmp_path_factory.mktemp("mlm")
    assert main(["train", str(CONFIGS / "mlm-python-docs.yaml"), f"run_root={root}", f"data.cache_dir={cache_dir}", *QUICK,
                 "data.max_length=32", "data.batch_size=16", "trainer.max_epochs=1", "agent.lr=0.002", "data.num_readers=0"]) == 0
    return next(root.iterdir())


@pytest.mark.slow
def test_mlm_beats_the_most_frequent_token_baseline(mlm_run: Path) -> None:
    s = json.loads((mlm_run / "summary.json").read_text())
    assert s["status"] == "completed" and s["epochs"] == 1
    base, acc = s["test_most_frequent_token_accuracy"], s["test_masked_accuracy"]
    assert 0.02 < base < 0.12 and s["test_masked_tokens"] > 1000
    assert acc > 1.5 * base, (acc, base)  # seen: 0.100 vs 0.053
    assert s["probe_accuracy"] > 0.4  # 8 classes: chance 0.125; seen 0.61
    assert (mlm_run / "tokenizer" / "tokenizer.json").is_file()


@pytest.mark.slow
def test_finetune_from_mlm_run_with_overrides_after_from(mlm_run: Path, tmp_path: Path, cache_dir: str, capsys: pytest.CaptureFixture) -> None:
    # The README's form: overrides after --from.
    out = run_cli(capsys, "finetune", str(CONFIGS / "finetune-docstrings.yaml"), "--from", str(mlm_run), f"run_root={tmp_path}",
                  f"data.cache_dir={cache_dir}", "trainer.progress_bar=false", "data.max_length=64", "trainer.max_epochs=2",
                  "agent.encoder_lr=0.0005", "data.label_fraction=0.5")
    s = json.loads((Path(out["run_dir"]) / "summary.json").read_text())
    assert s["num_classes"] == 8 and s["test_samples"] > 300
    assert s["test_accuracy"] > 0.25  # chance 0.125 (the most common class is 17%)
    # The fine-tuned encoder exports to a Hugging Face directory that AutoModel loads.
    assert main(["export", out["run_dir"], "--out", str(tmp_path / "hf")]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert {"config.json", "model.safetensors", "tokenizer.json", "head.safetensors", "head.json"} <= set(exported["files"])
    from transformers import AutoModel

    assert AutoModel.from_pretrained(str(tmp_path / "hf")).config.hidden_size == 128


@pytest.mark.slow
def test_mlm_export_loads_as_masked_lm(mlm_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from raylight.core.checkpoints import load_checkpoint_file

    assert main(["export", str(mlm_run), "--out", str(tmp_path / "hf")]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "BertForMaskedLM"
    model = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "hf")).eval()
    state = load_checkpoint_file(mlm_run / "checkpoints" / "last.ckpt")["state_dict"]
    assert torch.equal(model.state_dict()["bert.encoder.layer.1.output.dense.weight"], state["model.bert.encoder.layer.1.output.dense.weight"])
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    ids = tok("open the file and return its [MASK] as a string", return_tensors="pt")
    assert model(**ids).logits.shape[-1] == tok.vocab_size


@pytest.mark.slow
def test_finetune_from_a_transformers_directory(tmp_path: Path, cache_dir: str, capsys: pytest.CaptureFixture) -> None:
    from tests.ssl.text.test_bert_io import small_bert_dir

    hf = small_bert_dir(tmp_path / "hf")
    out = run_cli(capsys, "finetune", str(CONFIGS / "finetune-docstrings.yaml"), "--from", str(hf), f"run_root={tmp_path / 'runs'}",
                  f"data.cache_dir={cache_dir}", "trainer.progress_bar=false", "data.max_length=32", "trainer.max_epochs=1",
                  "agent.mode=linear_probe")
    s = json.loads((Path(out["run_dir"]) / "summary.json").read_text())
    assert s["status"] == "completed" and 0 <= s["test_accuracy"] <= 1


def test_bad_text_inputs_are_one_line_errors(tmp_path: Path, cache_dir: str, capsys: pytest.CaptureFixture) -> None:
    runs = tmp_path / "runs"
    cases = [
        (["train", str(CONFIGS / "mlm-python-docs.yaml"), f"data.corpus={tmp_path / 'missing'}"], "missing"),
        (["finetune", str(CONFIGS / "finetune-docstrings.yaml"), "--from", str(tmp_path)], "config.json"),
    ]
    table = tmp_path / "rows.csv"
    table.write_text("text,kind\nhello there,a\ngood bye,b\n")
    cases.append((["finetune", str(CONFIGS / "finetune-docstrings.yaml"), f"data.corpus={table}"], "no column 'label'"))
    for args, needle in cases:
        assert main([*args, f"run_root={runs}", f"data.cache_dir={cache_dir}"]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
    assert not runs.exists()


def test_many_files_each_rank_reads_only_its_own(tmp_path: Path) -> None:
    from raylight.core.config import load_config
    from raylight.ssl.shards import shards_for_rank, split_among_readers
    from raylight.ssl.text.sources import TextShardReader
    from raylight.ssl.text.task import trained_tokenizer

    corpus = write_corpus(tmp_path / "corpus")
    cfg = load_config(CONFIGS / "mlm-python-docs.yaml", [f"data.corpus={corpus}", "data.num_shards=4", f"data.cache_dir={tmp_path / 'c'}",
                                                         "data.vocab_size=100", "data.max_length=16", "data.test_fraction=0.2"])
    tok = trained_tokenizer(cfg.data)
    read: list[set[str]] = []
    for rank in range(2):
        files: set[str] = set()
        for ids in split_among_readers(shards_for_rank(4, rank, 2), 2):
            reader = TextShardReader(cfg.data, "train", ids, 0, None, tok, "plain")
            assert reader.num_samples() > 0
            files |= set(reader.files())
        read.append(files)
    test = set(TextShardReader(cfg.data, "test", [0], 0, None, tok, "plain").files())
    assert not read[0] & read[1] and not (read[0] | read[1]) & test  # disjoint: rank 0, rank 1, held out
    assert len(read[0] | read[1] | test) == 8  # 8 files, 5 shards (4 train + 1 test): whole files each


def test_tokenization_in_actors_matches_in_process(tmp_path: Path, ray_session: None) -> None:
    from raylight.core.config import load_config
    from raylight.ssl.shards import ShardGroup
    from raylight.ssl.text.sources import TextShardReader
    from raylight.ssl.text.task import trained_tokenizer

    cfg = load_config(CONFIGS / "mlm-python-docs.yaml", [f"data.cache_dir={tmp_path}", "data.vocab_size=500", "data.max_length=32", "data.shuffle=false"])
    tok = trained_tokenizer(cfg.data)

    def all_sequences(num_readers: int) -> np.ndarray:
        data = cfg.data.model_copy(update={"num_readers": num_readers, "cpus_per_reader": 0.5})
        group = ShardGroup(data, "train", 0, 0, 1, reader_cls=TextShardReader, reader_args=(tok, "plain"))
        try:
            counts = group.num_samples()
            batches = [b for j, n in enumerate(counts) for b in group.collect(group.request(j, 0, [(0, n)]))]
        finally:
            group.close()
        order = np.argsort(np.concatenate([b.indices for b in batches]))
        return np.concatenate([b.input_ids for b in batches])[order]

    remote, local = all_sequences(2), all_sequences(0)
    assert remote.shape == local.shape and remote.shape[0] > 1000
    assert np.array_equal(remote, local)


@pytest.mark.slow
def test_word2vec_trains_and_exports_gensim_format(tmp_path: Path, cache_dir: str, capsys: pytest.CaptureFixture) -> None:
    out = run_cli(capsys, "train", str(CONFIGS / "word2vec-python-docs.yaml"), f"run_root={tmp_path}", f"data.cache_dir={cache_dir}",
                  *QUICK, "trainer.max_epochs=1", "data.num_readers=0")
    s = json.loads((Path(out["run_dir"]) / "summary.json").read_text())
    assert s["probe_accuracy"] > 0.3 and s["neighbours"]
    assert main(["export", out["run_dir"], "--out", str(tmp_path / "w2v")]) == 0
    lines = (tmp_path / "w2v" / "word2vec.txt").read_text().splitlines()
    vocab, dim = map(int, lines[0].split())
    assert (vocab, dim) == (2000, 128) and len(lines) == vocab + 1 and len(lines[5].split()) == dim + 1


@pytest.mark.slow
def test_two_rank_ray_train_mlm(tmp_path: Path, cache_dir: str, capsys: pytest.CaptureFixture, ray_session: None) -> None:
    out = run_cli(capsys, "train", str(CONFIGS / "mlm-python-docs.yaml"), f"run_root={tmp_path}", f"data.cache_dir={cache_dir}",
                  *QUICK, "trainer.max_epochs=1", "trainer.num_workers=2", "data.num_readers=0", "agent.num_hidden_layers=1")
    s = json.loads((Path(out["run_dir"]) / "summary.json").read_text())
    assert s["status"] == "completed" and s["learner_ranks"] == 2
    assert s["test_masked_tokens"] > 1000 and 0 <= s["test_masked_accuracy"] <= 1


def test_mlm_with_bf16_autocast_and_gradient_accumulation(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The mixed-precision path on CPU (bf16 autocast; fp16 needs a GPU): master weights stay fp32, one optimizer
    step per 2 batches, and the export still loads in transformers."""
    import torch
    from transformers import AutoModelForMaskedLM

    corpus = write_corpus(tmp_path / "corpus", files=4, docs_per_file=40)
    out = run_cli(capsys, "train", str(CONFIGS / "mlm-python-docs.yaml"), f"run_root={tmp_path / 'runs'}", f"data.corpus={corpus}",
                  f"data.cache_dir={tmp_path / 'cache'}", "trainer.progress_bar=false", "tracking.backend=csv", "data.vocab_size=100",
                  "data.max_length=32", "data.batch_size=8", "data.num_readers=0", "trainer.max_epochs=1",
                  "trainer.precision=bf16-mixed", "trainer.accumulate_grad_batches=2")
    ckpt = torch.load(Path(out["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=True)
    assert {v.dtype for v in ckpt["state_dict"].values() if v.is_floating_point()} == {torch.float32}
    batches = out["train_sequences_per_epoch"] // 8  # full batches of 8 (seen: 178 sequences, 22 batches, 11 steps)
    assert ckpt["global_step"] == out["steps"] == batches // 2
    assert np.isfinite(out["test_masked_accuracy"])
    assert main(["export", out["run_dir"], "--out", str(tmp_path / "hf")]) == 0
    assert AutoModelForMaskedLM.from_pretrained(tmp_path / "hf").config.vocab_size == 100
