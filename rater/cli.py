"""The `rater` command line: one entry point for operators and developers."""

from __future__ import annotations

import click

from rater.localkafka.cli import kafka
from rater.ops.bench import bench
from rater.ops.demo import demo
from rater.ops.dlq_replay import dlq
from rater.ops.load import load
from rater.stream.cli import topics, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Kafka-native usage rater for prepaid communications credits.

    Configuration comes from the environment (KAFKA_BOOTSTRAP_SERVERS,
    RATER_TOPIC_PREFIX, RATER_PARTITIONS, ...): see README.md.
    """


main.add_command(kafka)
main.add_command(topics)
main.add_command(worker)
main.add_command(demo)
main.add_command(dlq)
main.add_command(load)
main.add_command(bench)
