"""Self-supervised pretraining and fine-tuning. Importing registers every algorithm:
ae (undercomplete / denoising / sparse), stacked_ae, vae, simclr, finetune."""

from raylight.ssl.methods import ae, finetune, simclr, stacked_ae, vae  # noqa: F401
