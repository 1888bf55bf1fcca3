"""RL algorithms (one file each) and the networks they share. Importing registers every algorithm."""

from raylight.agents import dqn  # noqa: F401
