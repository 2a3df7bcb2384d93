"""Sequence models from the seed papers, one module each, all on `SequenceEstimator`.

``lstm-fusion`` (Hallmen et al. 2024/2025, EMI), ``bah-window`` (Hallmen et al. 2025, BAH),
``tcn-qam`` (Yu et al. 2025, EMI) and ``tcn-xattn`` (Yu et al. 2025, VA); each is one
registry line in `affectstore.train.registry`.
"""
