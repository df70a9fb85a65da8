"""``python -m load <command> [options]``: one entry for the traffic and benchmark tools.

Each command is its module's own command line (click or argparse), imported
only when it runs, so ``--help`` stays fast and one tool's imports never slow
another's start.
"""

from __future__ import annotations

import importlib
import sys

import click

# command -> (module, its entry point, what it does)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "bench": ("load.bench.run", "bench", "one worker against a bare loop and plain Faust"),
    "produce": ("load.produce", "load", "produce generated traffic to the topics (rater load)"),
    "generate": ("load.generate", "main", "generated traffic to files, no broker"),
    "core": ("load.bench_core", "main", "the billing core alone: cost per CDR, state size"),
    "soak": ("load.memory_soak", "main", "one worker's memory along a long drain"),
    "restart": ("load.restart_time", "main", "time from kill -9 to the next committed output"),
    "misplaced": ("load.misplaced_backlog", "main", "CDR/s of a crc32 backlog vs a murmur2 one"),
    "notify": ("load.notify_bench", "main", "the notifier's mails/s and delay over SMTP"),
}


def usage() -> str:
    lines = ["usage: python -m load <command> [options]   (--help after a command for its options)"]
    lines += [f"  {name:<10} {what}" for name, (_, _, what) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        raise SystemExit(0 if not argv or argv[0] in ("-h", "--help") else 2)
    module, entry, _ = COMMANDS[argv[0]]
    command = getattr(importlib.import_module(module), entry)
    if isinstance(command, click.Command):
        command.main(args=argv[1:], prog_name=f"python -m load {argv[0]}")
    else:
        command(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
