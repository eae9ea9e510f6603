"""Stage split: image collections (folders, manifests, the paper's benchmarks), decoding, screening."""
