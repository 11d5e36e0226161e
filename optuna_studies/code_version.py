"""Which code ran: the ptv2 version and, from a git checkout, its commit (a search's parent run and a
registered version both record it). Defined in the core (``ptv2_core.provenance``), whose adapters
record it too."""
from __future__ import annotations

from ptv2_core.provenance import code_version, git_commit

__all__ = ["code_version", "git_commit"]
