"""Pure building blocks of BERT-style text pretraining: tokenizer, corpus shards, packing, masking."""
