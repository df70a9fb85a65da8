"""The `rater` command line: one entry point for operators and developers."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

from rater.dlq.replay import dlq
from rater.stream.cli import create_topics_or_fail, topics, worker

# Development commands, imported only when run: the worker never loads the local
# broker, the demo's mail server, the load generator or the benchmark harness.
LAZY = {"kafka": "rater.devkit.localkafka.cli", "demo": "rater.devkit.demo"}
# Tooling that lives in the checkout's `load` package, not in the installed package:
# listed only where that package sits beside `rater` (docs/decisions.md D66 ("Layout")).
CHECKOUT = {"load": "load.produce", "bench": "load.bench.run"}
CHECKOUT_ROOT = Path(__file__).resolve().parents[1]


def checkout_tools() -> dict[str, str]:
    if not (CHECKOUT_ROOT / "load" / "__init__.py").is_file():
        return {}
    if str(CHECKOUT_ROOT) not in sys.path:
        sys.path.append(str(CHECKOUT_ROOT))
    return CHECKOUT


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY, *checkout_tools()])

    def get_command(self, ctx: click.Context, name: str) -> Any:
        module = LAZY.get(name) or checkout_tools().get(name)
        if module is not None:
            return getattr(importlib.import_module(module), name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Kafka-native usage rater for prepaid communications credits.

    Configuration comes from the environment (KAFKA_BOOTSTRAP_SERVERS,
    RATER_TOPIC_PREFIX, RATER_PARTITIONS, ...): see README.md.
    """


@main.command()
@click.option("--loglevel", default="info", show_default=True, help="Log level.")
def notify(loglevel: str) -> None:
    """Mail notifications to tenant admins over SMTP (SPEC 10; configuration: see README)."""
    import asyncio
    import logging

    from rater.config import SettingsError
    from rater.notifier.service import serve
    from rater.notifier.settings import NotifierSettings

    try:
        settings = NotifierSettings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    create_topics_or_fail(settings.kafka)
    asyncio.run(serve(settings))


main.add_command(topics)
main.add_command(worker)
main.add_command(dlq)
