"""Helpers every subcommand shares: quieter libraries (the library's, which the app uses too)."""

from __future__ import annotations

from retarget.errors import quiet_libraries  # noqa: F401 - for the subcommands that import it from here

__all__ = ["quiet_libraries"]
