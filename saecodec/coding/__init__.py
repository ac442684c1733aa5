"""Entropy coding of latents and the payload format (constriction)."""
