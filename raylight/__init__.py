"""raylight: distributed RL and self-supervised pretraining on Ray + PyTorch Lightning."""
__version__ = "0.1.0"
