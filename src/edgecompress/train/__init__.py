"""Training: the architectures, the user's own model, fitting, distillation, and a training stage's files."""
