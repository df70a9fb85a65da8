"""What the demo shows: the live view (rich), a plain progress line, and the summary.

Every figure comes from the output topics as a ``read_committed`` consumer
reads them (:class:`~rater.observability.tally.OutputTally`), except the lag,
which is the worker's own metric, and the mails, which the demo's SMTP server
received (and the notifier's metrics explain). The summary's figures are also returned as
a dict (``--summary-json``), which the demo's test compares with the topics.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rater.devkit.demo_tenants import CURRENCY
from rater.observability.tally import DLQ_MEANING, OutputTally

if TYPE_CHECKING:
    from rater.devkit.demo import Run

LOWEST = 8  # balances shown


def _tally(run: Run) -> OutputTally:
    return run.tail.tally if run.tail is not None else OutputTally()


def _figures_table(run: Run, tally: OutputTally) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold")
    table.add_column()
    lag = "-" if run.lag is None else f"{run.lag:,}"
    table.add_row(f"{run.sent:,}", "CDRs sent (calls ended)")
    table.add_row(f"{tally.rated:,}", f"CDRs rated  ({run.rated_per_s():,.0f} per second)")
    table.add_row(lag, "records waiting for the worker (lag)")
    table.add_row(
        f"{tally.topups_requested:,}",
        Text.assemble(
            "top-ups requested: ",
            (f"{tally.topups_succeeded} succeeded", "green"),
            ", ",
            (f"{tally.topups_failed} failed", "red" if tally.topups_failed else ""),
        ),
    )
    table.add_row(
        f"{len(tally.blocked):,}",
        "tenants blocked (prepaid below zero: toll-free and international off)",
    )
    overage = tally.overage.get(CURRENCY, Decimal(0))
    table.add_row(f"{overage:,.2f}", f"{CURRENCY} overage (post-usage billing, invoiced later)")
    table.add_row(f"{sum(tally.notifications.values()):,}", "notifications (on the topic)")
    table.add_row(f"{run.mails_received():,}", _mails_meaning(run))
    return table


def _mails_meaning(run: Run) -> str:
    m = run.mail_metrics
    failed = sum(m.get("failed", {}).values())
    where = f"{run.mail.host}:{run.mail.port}" if run.mail is not None else "-"
    return (
        f"e-mails received by the demo's SMTP server {where} from `rater notify` "
        f"({m.get('without_contact', 0)} notices without a contact, {failed} failed)"
    )


def _dlq_table(tally: OutputTally) -> Table:
    table = Table(title="rejected input (rater-dlq)", title_justify="left", expand=True)
    table.add_column("count", justify="right")
    table.add_column("code")
    table.add_column("why")
    for code, count in tally.dlq.most_common():
        table.add_row(f"{count:,}", code, DLQ_MEANING.get(code, ""))
    if not tally.dlq:
        table.add_row("0", "", "nothing rejected yet")
    return table


def _balances_table(run: Run, tally: OutputTally) -> Table:
    by_id = {t.tenant_id: t for t in run.tenants}
    table = Table(title="lowest balances", title_justify="left", expand=True)
    table.add_column("tenant")
    table.add_column(f"balance {CURRENCY}", justify="right")
    table.add_column("what it means")
    for tenant_id, balance in tally.lowest_balances(LOWEST):
        tenant = by_id.get(tenant_id)
        meaning = tenant.meaning(balance, tenant_id in tally.blocked) if tenant else "?"
        table.add_row(
            tenant_id, Text(f"{balance:,.2f}", style="red" if balance < 0 else ""), meaning
        )
    return table


def live_view(run: Run) -> Group:
    tally = _tally(run)
    elapsed = min(run.duration, time.monotonic() - run.started) if run.phase != "starting" else 0
    head = Text.assemble(
        ("rater demo", "bold"),
        f"  ·  {run.phase}  ·  {elapsed:.0f}/{run.duration:.0f} s of calls at "
        f"{run.rate:g}/s  ·  {len(run.tenants)} tenants  ·  topics {run.settings.topic_prefix}*\n",
        "dashboard ",
        (run.dashboard, "underline"),
        "   credits page ",
        (run.credits, "underline"),
    )
    return Group(
        Panel(head, border_style="blue"),
        _figures_table(run, tally),
        _dlq_table(tally),
        _balances_table(run, tally),
        Text("Ctrl-C stops the demo; library logs go to " + str(run.log_path), style="dim"),
    )


def progress_line(run: Run) -> str:
    """One line for a log or CI, printed every few seconds when there is no terminal."""
    tally = _tally(run)
    elapsed = time.monotonic() - run.started
    dlq = ", ".join(f"{code} {n}" for code, n in tally.dlq.most_common()) or "none"
    return (
        f"[{elapsed:5.1f}s {run.phase}] sent {run.sent:,}, rated {tally.rated:,} "
        f"({run.rated_per_s():,.0f}/s), lag {run.lag if run.lag is not None else '-'}, "
        f"top-ups {tally.topups_requested}/{tally.topups_succeeded}/{tally.topups_failed} "
        f"(requested/succeeded/failed), blocked {len(tally.blocked)}, "
        f"mails {run.mails_received():,}, dlq: {dlq}"
    )


def summary_figures(run: Run) -> dict[str, Any]:
    tally = _tally(run)
    return {
        "topic_prefix": run.settings.topic_prefix,
        "bootstrap": run.settings.bootstrap_servers,
        "tenants": len(run.tenants),
        "cdrs_sent": run.sent,
        "cdrs_rated": tally.rated,
        "cdrs_rated_at_no_charge": tally.rated_zero,
        "records": dict(sorted(tally.records.items())),
        "dlq": dict(tally.dlq.most_common()),
        "topups": {
            "requested": tally.topups_requested,
            "succeeded": tally.topups_succeeded,
            "failed": tally.topups_failed,
        },
        "blocked": sorted(tally.blocked),
        "overage": {c: f"{a:.6f}" for c, a in sorted(tally.overage.items())},
        "notifications": dict(sorted(tally.notifications.items())),
        "mails": {
            "received": run.mails_received(),  # by the demo's SMTP server
            "sent": dict(sorted(run.mail_metrics.get("sent", {}).items())),  # the notifier's
            "failed": dict(sorted(run.mail_metrics.get("failed", {}).items())),
            "without_contact": run.mail_metrics.get("without_contact", 0),
        },
        "lowest_balances": [[t, f"{b:.6f}"] for t, b in tally.lowest_balances(LOWEST)],
    }


def summary(
    run: Run, figures: dict[str, Any], interrupted: bool, own_broker: bool, serve: bool
) -> Group:
    tally = _tally(run)
    lines: list[Any] = []
    title = "Stopped by Ctrl-C: what was seen so far" if interrupted else "What happened"
    lines.append(Text(title, style="bold"))
    sent, rated = figures["cdrs_sent"], figures["cdrs_rated"]
    calling = min(run.duration, time.monotonic() - run.started)
    rejected = sum(figures["dlq"].values())
    lines.append(
        Text(
            f"  {sent:,} calls sent by {figures['tenants']} tenants in {calling:.0f} s; "
            f"{rated:,} rated ({figures['cdrs_rated_at_no_charge']:,} at no charge: minute "
            f"pools or zero-length calls); {rejected:,} records rejected."
        )
    )
    lines.append(
        Text(
            f"  Money is in {CURRENCY}, written with 6 decimal places on the topics "
            "(shown here rounded to cents). A balance is the credits left minus what calls "
            "took beyond them."
        )
    )
    lines.append(
        Text(
            "  A negative prepaid balance means calls that already happened cost more than "
            "the credits: the tenant owes the difference, its toll-free dial-in and "
            "international calling are blocked, and the next purchase or top-up pays the "
            "debt first."
        )
    )
    topups = figures["topups"]
    reasons = ", ".join(f"{r} x{n}" for r, n in tally.topup_failure_reasons.items())
    lines.append(
        Text(
            f"  Auto-recharge: {topups['requested']} top-ups requested, "
            f"{topups['succeeded']} succeeded, {topups['failed']} failed"
            + (f" ({reasons}: card-fails' card is declined on purpose)" if reasons else "")
            + "."
        )
    )
    lines.append(
        Text(
            f"  Blocked now: {', '.join(figures['blocked']) or 'nobody'}. "
            f"Overage billed after usage: "
            + (", ".join(f"{a} {c}" for c, a in figures["overage"].items()) or "none")
            + " (NCE tenants: their calls beyond credits are invoiced, not blocked)."
        )
    )
    notes = ", ".join(f"{k} {v}" for k, v in figures["notifications"].items()) or "none"
    lines.append(Text(f"  Notifications: {notes}."))
    mails = figures["mails"]
    where = f"{run.mail.host}:{run.mail.port}" if run.mail is not None else "-"
    failed = sum(mails["failed"].values())
    lines.append(
        Text(
            f"  E-mail: `rater notify` mailed {mails['received']:,} notices to the tenants' "
            f"contacts; the demo's SMTP server on {where} received them. "
            f"{mails['without_contact']:,} notices had no contact e-mail (counted, not "
            f"mailed)" + (f"; {failed:,} were given up" if failed else "") + "."
        )
    )
    if figures["dlq"]:
        lines.append(Text("\nWhy records are in rater-dlq", style="bold"))
        for code, count in figures["dlq"].items():
            example = (tally.dlq_examples.get(code) or [None])[-1]
            shown = f"  e.g. {example['value'][:60]}" if example else ""
            lines.append(Text(f"  {count:>5} {code}: {DLQ_MEANING.get(code, '')}.{shown}"))
        lines.append(
            Text(
                "  The demo sends these on purpose. `rater dlq replay` sends fixable ones "
                "(no_tariff once a tariff exists) back; nothing is applied twice."
            )
        )
    lines.append(_balances_table(run, tally))
    lines.append(Text("Where to look next", style="bold"))
    prefix = run.settings.topic_prefix
    bootstrap = run.settings.bootstrap_servers
    port = run.settings.web_port
    if serve and not interrupted:
        lines.append(Text(f"  ops dashboard   {run.dashboard}"))
        lines.append(Text(f"  credits page    {run.credits}"))
        lines.append(
            Text(f"  API             curl http://127.0.0.1:{port}/tenants/prepaid-01/balance")
        )
    else:
        lines.append(
            Text(
                "  `rater demo --serve` keeps the worker up after the summary: its ops dashboard "
                "(/dashboard), tenant credits page (/credits) and API (/tenants/{id}/balance)."
            )
        )
        lines.append(
            Text(
                f"  Or start a worker on these topics: KAFKA_BOOTSTRAP_SERVERS={bootstrap} "
                f"RATER_TOPIC_PREFIX={prefix} RATER_APP_ID={prefix}rater RATER_PARTITIONS=4 "
                f"RATER_DATA_DIR={run.settings.data_dir} RATER_WEB_PORT={port} rater worker"
            )
        )
    lines.append(Text(f"  topics          {prefix}rated-cdrs, {prefix}ledger, ... on {bootstrap}"))
    lines.append(Text(f"  logs            {run.log_path} (worker.log, notifier.log beside it)"))
    if own_broker:
        lines.append(
            Text("  the local Kafka broker keeps running: stop it with `rater kafka stop`")
        )
    return Group(*lines)
