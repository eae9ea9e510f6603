"""CLIP (open_clip) and DINO (timm) factories, chosen by params, and their speed-ups."""
