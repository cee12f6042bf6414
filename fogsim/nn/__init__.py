"""Quantized hybrid early-exit networks: quantizers, layers, zoo, op counts, training."""
