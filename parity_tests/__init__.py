"""Differential tests: npcnn against TensorFlow/Keras (needs TensorFlow)."""
