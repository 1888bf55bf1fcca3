"""Self-supervised pretraining and fine-tuning (images and text): shard readers, methods (``raylight.ssl.methods``),
the pretrain / finetune / text ``Task``s.

Kept empty so ``import raylight.ssl`` is cheap; the core reaches this package only through entry points."""
