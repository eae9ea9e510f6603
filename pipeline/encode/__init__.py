"""Stages features_clip / features_dino: frozen encoders over a collection, in resumable parts."""
