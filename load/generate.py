"""Generated traffic to files, for inspection or for any Kafka producer (no broker needed).

Run from the project root::

    .venv/bin/python -m load generate --cdrs 10000 --tenants 100 --out /tmp/traffic

writes ``tariffs.tsv``, ``account-events.tsv`` and ``cdrs.tsv``: one
``key<TAB>value`` line per message, in production order, as ``kcat -P -K '\\t'``
reads them; plus ``kinds.txt`` with the label of every CDR line (good,
duplicate or the rejection code the rater must give). The generator is the
one ``rater load`` produces from (load/traffic.py), with the same options.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from load.produce import config_from_options
from load.traffic import Traffic


@click.command()
@click.option("--cdrs", default=10_000, show_default=True)
@click.option("--tenants", default=100, show_default=True)
@click.option("--tariffs", "tariff_rows", default=1_000, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--dup-share", default=0.01, show_default=True)
@click.option("--bad-share", default=0.01, show_default=True)
@click.option("--zipf", default=1.0, show_default=True)
@click.option("--span-hours", default=6.0, show_default=True)
@click.option("--end", default=None, help="Start time of the last CDR (default: a minute ago).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def generate(out: Path, **options: object) -> None:
    """Write generated traffic as key<TAB>value lines, one file per topic."""
    traffic = Traffic(config_from_options(**options))  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    write_lines(out / "tariffs.tsv", traffic.tariff_messages())
    write_lines(out / "account-events.tsv", traffic.account_messages())
    kinds: Counter[str] = Counter()
    with (out / "cdrs.tsv").open("wb") as cdrs, (out / "kinds.txt").open("w") as labels:
        for key, value, kind in traffic.cdrs():
            cdrs.write(key + b"\t" + value.replace(b"\n", b" ") + b"\n")
            labels.write(kind + "\n")
            kinds[kind] += 1
    click.echo(f"wrote {out}: {dict(kinds)}")


def write_lines(path: Path, messages: list[tuple[bytes, bytes]]) -> None:
    with path.open("wb") as f:
        for key, value in messages:
            f.write(key + b"\t" + value + b"\n")


if __name__ == "__main__":
    generate()
