from pathlib import Path

import pytest

from raylight.core.config import (
    ExperimentConfig,
    apply_overrides,
    build_config,
    describe_schema,
    load_config,
    parse_override,
    read_yaml,
    save_config,
)
from raylight.core.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_validates(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.agent is not None


def test_overrides_are_typed_and_nested() -> None:
    cfg = build_config(apply_overrides({"algo": "dqn"}, ["agent.lr=3e-4", "env.id=Acrobot-v1", "rollout.num_workers=2", "agent.hidden=[32,32]"]))
    assert cfg.agent.lr == pytest.approx(3e-4)
    assert cfg.env.id == "Acrobot-v1"
    assert cfg.rollout.num_workers == 2
    assert cfg.agent.hidden == [32, 32]


def test_unknown_key_is_rejected_with_its_dotted_name() -> None:
    with pytest.raises(ConfigError, match=r"^agent\.learning_rate: unknown key$"):
        build_config({"algo": "dqn", "agent": {"learning_rate": 1e-3}})
    with pytest.raises(ConfigError, match=r"rollout\.num_worker: unknown key"):
        build_config({"algo": "dqn", "rollout": {"num_worker": 1}})


def test_wrong_type_names_key_and_value() -> None:
    with pytest.raises(ConfigError) as err:
        build_config({"algo": "dqn", "agent": {"lr": "fast"}})
    msg = str(err.value)
    assert msg.startswith("agent.lr:") and "'fast'" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match=r"rollout\.num_workers: .*greater than or equal to 0"):
        build_config({"algo": "dqn", "rollout": {"num_workers": -1}})


def test_unknown_algorithm_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"algo: unknown algorithm 'dqm' \(known: .*dqn"):
        build_config({"algo": "dqm"})


def test_missing_algo_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"^algo: required"):
        build_config({})


def test_parse_override_values() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=1e-3") == (["a"], 1e-3)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=null") == (["a"], None)
    assert parse_override("a=CartPole-v1") == (["a"], "CartPole-v1")
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("novalue")


def test_override_into_scalar_is_an_error() -> None:
    with pytest.raises(ConfigError, match="is not a section"):
        apply_overrides({"algo": "dqn"}, ["algo.x=1"])


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("algo: dqn\nagent: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml line \d+: not valid YAML"):
        read_yaml(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        read_yaml(tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        read_yaml(listy)


def test_saved_config_round_trips(tmp_path: Path) -> None:
    cfg = build_config({"algo": "dqn", "seed": 7, "agent": {"n_step": 3}})
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again.to_dict() == cfg.to_dict()


def test_schema_documents_every_section_key() -> None:
    table = describe_schema()
    for key in ("rollout.num_workers", "ray.address", "tracking.backend", "eval.every_env_steps"):
        assert f"`{key}`" in table


def test_each_kind_carries_only_its_own_sections() -> None:
    """A discriminated union keyed by the algorithm's kind: RL has no data section, SSL no env."""
    rl = build_config({"algo": "dqn"})
    ssl = build_config({"algo": "simclr"})
    assert hasattr(rl, "env") and not hasattr(rl, "data") and "data" not in rl.to_dict()
    assert hasattr(ssl, "data") and not hasattr(ssl, "env") and "env" not in ssl.to_dict()
    with pytest.raises(ConfigError, match=r"^data: unknown key"):
        build_config({"algo": "dqn", "data": {"crop_min_scale": 0.5}})
    with pytest.raises(ConfigError, match=r"^env: unknown key"):
        build_config({"algo": "simclr", "env": {"id": "CartPole-v1"}})
    with pytest.raises(ConfigError, match=r"^trainer.max_epochs: unknown key"):
        build_config({"algo": "ppo", "trainer": {"max_epochs": 3}})


def test_schema_documents_every_kind() -> None:
    from raylight.core.config import describe_schema

    text = describe_schema()
    for key in ("`trainer.num_workers`", "`env.id`", "`rollout.num_workers`", "`trainer.total_env_steps`", "`data.dataset`",
                "`trainer.max_epochs`", "`agent.minibatch_size`"):
        assert key in text, key
