"""The `rater` command line: one entry point for operators and developers."""

from __future__ import annotations

import click

from rater.localkafka.cli import kafka
from rater.ops.bench import bench
from rater.ops.demo import demo
from rater.ops.dlq_replay import dlq
from rater.ops.load import load
from rater.stream.cli import create_topics_or_fail, topics, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
main.add_command(demo)
main.add_command(dlq)
main.add_command(load)
main.add_command(bench)
