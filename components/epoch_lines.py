"""A pipeline step's training progress as lines: a step shows no bars."""
from __future__ import annotations


def epoch_lines(label: str, epochs: int, score_key: str, score_name: str):
    """A training ``report`` that says each epoch as a ``ptv2 ▸`` line (the step's log, and
    ``ptv2 run``'s console: bars are off in a step); it never stops the run."""
    def say(epoch: int, row: dict) -> bool:
        print(f"ptv2 ▸ {label}, epoch {epoch}/{epochs}: train loss {row['train_loss']:.4f}, "
              f"{score_name} {row[score_key]:.4f}", flush=True)
        return False
    return say
