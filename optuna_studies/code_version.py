"""Which code ran: ``ptv2_core.code_version``'s, here where the tracking layers have always imported it."""
from ptv2_core.code_version import code_version, git_commit  # noqa: F401
