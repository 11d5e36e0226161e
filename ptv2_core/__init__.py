"""ptv2_core: P-Tuning v2 (deep prompt tuning) on transformers 5.x.

The library layer: prefix encoder, cache injection, model wrapper and heads, tasks and data,
training loop, metrics and adapter files. It imports no tracking, search or pipeline library;
progress leaves it through a plain ``report(epoch, metrics)`` callback.
"""

__version__ = "0.1.0"
