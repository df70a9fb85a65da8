"""The `rater` command line: one entry point for operators and developers."""

from __future__ import annotations

import importlib
from typing import Any

import click

from rater.localkafka.cli import kafka
from rater.ops.dlq_replay import dlq
from rater.stream.cli import create_topics_or_fail, topics, worker

# Tooling commands, imported only when run: the worker never loads the demo's mail
# server, the load generator or the benchmark harness (and starts faster without them).
LAZY = {"demo": "rater.ops.demo", "load": "rater.ops.load", "bench": "rater.ops.bench"}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY])

    def get_command(self, ctx: click.Context, name: str) -> Any:
        if name in LAZY:
            return getattr(importlib.import_module(LAZY[name]), name)
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

    from rater.notifier.service import serve
    from rater.notifier.settings import NotifierSettings
    from rater.stream.settings import SettingsError

    try:
        settings = NotifierSettings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    create_topics_or_fail(settings.kafka)
    asyncio.run(serve(settings))


main.add_command(kafka)
main.add_command(topics)
main.add_command(worker)
main.add_command(dlq)
