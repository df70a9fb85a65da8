"""Traffic generation and benchmarks: tooling run from the project's checkout, never shipped.

Run as ``python -m load <command>`` from the project root (``python -m load
--help`` lists them). Imports ``rater``; nothing in ``rater`` imports this
package except the checkout-only ``rater bench`` and ``rater load`` commands
(``rater/cli.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_env() -> dict[str, str]:
    """The environment for a ``python -m load.…`` child process started from any directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env
