"""`retarget eval`: the evaluation metrics (the command lives in retarget.tools.evaluation)."""

from __future__ import annotations


def run_eval(argv: list[str]) -> int:
    from retarget.tools.evaluation import main as evaluation_main

    return evaluation_main(argv)
