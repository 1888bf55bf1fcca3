import json
from pathlib import Path

import numpy as np
import pytest
import torch

from raylight.core.config import load_config
from raylight.core.run import train
from raylight.rl.inference import evaluate_checkpoint, load_agent

ROOT = Path(__file__).resolve().parents[3]
CARTPOLE = ROOT / "configs" / "dqn-cartpole.yaml"


def _cfg(run_root: str, *overrides: str):
    return load_config(CARTPOLE, [f"run_root={run_root}", "tracking.backend=none", "trainer.progress_bar=false", *overrides])


@pytest.mark.slow
def test_dqn_solves_acrobot(run_root: str) -> None:
    """configs/dqn-acrobot.yaml (RL Zoo hyperparameters) reaches Acrobot's -100 (random: -500), with a 64x64 Q-net
    instead of the Zoo's 256x256: the same algorithm at a sixth of the CPU time per gradient step (the Zoo width
    took 176 s here; the benchmark runs the config as shipped). Seen: -84 at 15k steps (seed 2; seed 0 needs 35k).
    CartPole's 475 is reached by the DQN benchmark and the two-rank test; this one is the harder env."""
    cfg = load_config(ROOT / "configs" / "dqn-acrobot.yaml", [f"run_root={run_root}", "tracking.backend=none", "trainer.progress_bar=false",
                                                              "seed=2", "agent.hidden=[64,64]", "trainer.total_env_steps=40000",
                                                              "eval.stop_at_return=-100"])
    result = train(cfg)
    assert result.metrics["reached"] is not None, result.metrics
    assert result.metrics["eval_return_mean"] >= -100


def test_checkpoint_round_trip_restores_the_same_greedy_policy(run_root: str) -> None:
    cfg = _cfg(run_root, "trainer.total_env_steps=3000", "eval.every_env_steps=100000", "eval.stop_at_return=null", "agent.learning_starts=500", "checkpoint.every_iterations=4")
    result = train(cfg)
    final_eval = json.loads((result.run_dir / "eval.json").read_text())["history"][-1]
    # The CLI path: same seed and episode count as the final in-training evaluation -> identical returns.
    again = evaluate_checkpoint(result.run_dir, episodes=cfg.eval.episodes, seed=cfg.seed, which="last")
    assert again["return_mean"] == pytest.approx(final_eval["return_mean"])
    assert again["env_steps_trained"] == result.metrics["env_steps"]
    assert (result.run_dir / "learning_curve.png").stat().st_size > 5_000
    agent = load_agent(result.checkpoint)
    ckpt = torch.load(result.checkpoint, weights_only=True)
    obs = torch.as_tensor(np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32))
    q_from_ckpt = {k.removeprefix("q_net."): v for k, v in ckpt["state_dict"].items() if k.startswith("q_net.")}
    fresh = agent.build_actor(agent.cfg.agent, agent.obs_space, agent.act_space)
    fresh.load_state_dict(q_from_ckpt)
    assert torch.equal(agent.cpu_actor().act(obs, deterministic=True).actions, fresh.act(obs, deterministic=True).actions)
    # Periodic checkpoints are kept to checkpoint.keep_last plus last.ckpt, and no temp files are left behind.
    names = sorted(p.name for p in (result.run_dir / "checkpoints").iterdir())
    assert "last.ckpt" in names and len([n for n in names if n.startswith("iter-")]) <= cfg.checkpoint.keep_last
    assert not [n for n in names if n.endswith(".tmp")]


def test_resume_continues_env_steps_and_replay(run_root: str) -> None:
    keep = "checkpoint.include_replay=true"
    first = train(_cfg(run_root, "trainer.total_env_steps=2048", "eval.every_env_steps=100000", "agent.learning_starts=512", keep))
    assert first.metrics["env_steps"] == 2048
    resumed = train(_cfg(run_root, "trainer.total_env_steps=4096", "eval.every_env_steps=100000", "agent.learning_starts=512", keep),
                    resume_from=first.run_dir)
    assert resumed.run_dir != first.run_dir
    assert resumed.metrics["env_steps"] == 4096
    ckpt = torch.load(resumed.checkpoint, weights_only=True)
    assert ckpt["raylight"]["env_steps"] == 4096
    assert int(ckpt["resume_only"]["replay"]["pos"]) == 4096  # replay buffer carried over, not restarted
    assert ckpt["raylight"]["gradient_updates"] > 0
    # Another env count per learner: the saved buffer is re-streamed (4096 transitions of 1 stream into 2), not dropped.
    with pytest.warns(UserWarning, match="re-streaming its 4,096 transitions"):
        again = train(_cfg(run_root, "trainer.total_env_steps=5120", "eval.every_env_steps=100000", keep, "rollout.envs_per_worker=2"),
                      resume_from=resumed.run_dir)
    replay = torch.load(again.checkpoint, weights_only=True)["resume_only"]["replay"]
    assert replay["rewards"].shape[1] == 2 and int(replay["pos"]) == 2048 + 512  # 4096 re-streamed as 2 x 2048, then 1024 new steps


def test_checkpoint_sizes_stay_small_with_a_100k_buffer(run_root: str) -> None:
    """A 100k-transition buffer never enters periodic or best checkpoints; last.ckpt holds only its filled rows,
    and only with checkpoint.include_replay (default off)."""
    common = ["agent.buffer_size=100000", "trainer.total_env_steps=3000", "agent.learning_starts=500", "eval.every_env_steps=1000",
              "eval.episodes=2", "eval.stop_at_return=null", "checkpoint.every_iterations=5"]
    plain = train(_cfg(run_root, *common))
    sizes = {p.name: p.stat().st_size for p in (plain.run_dir / "checkpoints").iterdir()}
    weights_only = sizes["best.ckpt"]  # the 256x256 Q-network, its target copy and Adam's moments: ~1.1 MB
    assert max(sizes.values()) < weights_only + 10_000, sizes
    kept = train(_cfg(run_root, *common, "checkpoint.include_replay=true"))
    sizes = {p.name: p.stat().st_size for p in (kept.run_dir / "checkpoints").iterdir()}
    assert "best.ckpt" in sizes and any(n.startswith("iter-") for n in sizes)
    assert all(size < weights_only + 10_000 for name, size in sizes.items() if name != "last.ckpt"), sizes
    # 3000 transitions x 46 bytes (2 x 4 float32 obs, int64 action, reward, flags) ~ 0.14 MB, not the 100k-row preallocation (4.6 MB)
    assert 100_000 < sizes["last.ckpt"] - weights_only < 400_000, sizes


def test_custom_user_env_trains(run_root: str) -> None:
    cfg = _cfg(
        run_root,
        "env.id=tests.fixtures.envs:Corridor",
        "env.max_episode_steps=50",
        "trainer.total_env_steps=4000",
        "eval.every_env_steps=2000",
        "eval.stop_at_return=0.9",
        "agent.learning_starts=500",
        "agent.train_freq=64",
        "agent.gradient_steps=32",
        "agent.hidden=[32]",
    )
    result = train(cfg)
    assert result.metrics["eval_return_mean"] >= 0.9  # optimal: 1 - 0.05 = 0.95


def test_image_observations_train_with_the_cnn(run_root: str) -> None:
    cfg = _cfg(
        run_root,
        "env.id=tests.fixtures.envs:PixelTarget",
        "trainer.total_env_steps=600",
        "eval.every_env_steps=100000",
        "agent.learning_starts=200",
        "agent.train_freq=100",
        "agent.gradient_steps=4",
        "agent.batch_size=16",
        "agent.buffer_size=1000",
        "checkpoint.include_replay=false",
    )
    result = train(cfg)
    assert result.metrics["env_steps"] == 600
    assert "replay" not in torch.load(result.checkpoint, weights_only=True)["raylight"]


@pytest.mark.usefixtures("ray_session")
def test_dqn_with_ray_rollout_actors_and_wandb_offline(run_root: str) -> None:
    cfg = load_config(
        CARTPOLE,
        [
            f"run_root={run_root}",
            "tracking.backend=wandb",
            "trainer.progress_bar=false",
            "rollout.num_workers=2",
            "rollout.envs_per_worker=2",
            "trainer.total_env_steps=3000",
            "eval.every_env_steps=1500",
            "agent.learning_starts=500",
            "agent.n_step=3",
            "agent.dueling=true",
            "agent.prioritized=true",
            "agent.target_update=polyak",
        ],
    )
    result = train(cfg)
    assert result.metrics["env_steps"] >= 3000
    assert (result.run_dir / "config.yaml").is_file()
    wandb_files = list((result.run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert wandb_files and wandb_files[0].stat().st_size > 1000, "offline W&B run must be finished, not an empty header"


def test_dqn_learning_rate_anneals_linearly(run_root: str) -> None:
    """agent.lr_schedule=linear: lr * (1 - env_steps / total_env_steps) at each iteration, as SB3's linear schedule."""
    cfg = _cfg(run_root, "trainer.total_env_steps=1000", "agent.learning_starts=200", "agent.train_freq=100", "agent.gradient_steps=2",
               "agent.lr_schedule=linear", "agent.lr=0.01", "eval.every_env_steps=100000", "eval.stop_at_return=null")
    from raylight.rl.agents.dqn import DQN

    seen: list[tuple[int, float]] = []
    original = DQN.optimizer_step

    def spy(self, opt, loss, params, max_grad_norm):  # noqa: ANN001, ANN202
        seen.append((self.env_steps, opt.param_groups[0]["lr"]))
        return original(self, opt, loss, params, max_grad_norm)

    DQN.optimizer_step = spy
    try:
        train(cfg)
    finally:
        DQN.optimizer_step = original
    assert seen and all(lr == pytest.approx(0.01 * (1 - steps / 1000)) for steps, lr in seen), seen
    assert seen[0][1] > seen[-1][1]
