"""Helpers every subcommand shares: quieter libraries."""

from __future__ import annotations

import os


def quiet_libraries() -> None:
    """Only errors from diffusers/transformers/MediaPipe: their warnings are not the user's to act on."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()

