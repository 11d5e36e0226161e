"""Adapters in the MLflow model registry: register, promote, load.

Plain functions (the Kubeflow components and the ``ptv2`` CLI call them):
``register_adapter`` → ``RegisteredVersion``; ``promote`` → ``PromotionDecision``.
"""
