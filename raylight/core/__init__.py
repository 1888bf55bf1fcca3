"""Infrastructure shared by every algorithm: config, Ray, rollouts, shards, trainer, checkpoints, tracking, CLI."""
