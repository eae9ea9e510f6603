"""NoLA: label-free tuning of a CLIP zero-shot classifier (arXiv 2411.19346).

The library behind the DVC stages in ``stages/``; every function here is usable on its own.
"""
