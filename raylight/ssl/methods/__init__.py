"""Self-supervised pretraining and fine-tuning. Importing registers every algorithm:
ae (undercomplete / denoising / sparse), stacked_ae, vae, simclr, atc (env frames), finetune; on text: mlm, word2vec, text_finetune.
(Text modules import ``transformers`` / ``tokenizers`` only when used: the ``text`` extra.)"""

from raylight.ssl.methods import ae, atc, finetune, mlm, simclr, stacked_ae, text_finetune, vae, word2vec  # noqa: F401
