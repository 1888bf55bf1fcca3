"""RL algorithms (one file each) and the networks they share. Importing registers every algorithm."""

from raylight.rl.agents import a2c, appo, dqn, impala, pets, ppo, recurrent_ppo, reinforce, sac, td3  # noqa: F401
