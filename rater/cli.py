"""The `rater` command line: one entry point for operators and developers."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Kafka-native usage rater for prepaid communications credits."""


def _register() -> None:
    from rater.localkafka.cli import kafka

    main.add_command(kafka)


_register()
