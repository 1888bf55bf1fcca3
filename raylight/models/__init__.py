"""Networks shared by every domain: encoders with a stable state-dict layout and a self-describing,
pickle-free file format (safetensors weights + a JSON architecture). An SSL run trains one; a
fine-tuning head (and, next, an RL torso) loads one by path, without either domain importing the other."""
