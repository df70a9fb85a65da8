"""Realistic, deterministic traffic for load tests and benchmarks: pure, no I/O.

One :class:`Traffic` built from a :class:`TrafficConfig` gives the set-up
messages (a tariff table over ~50 countries, then for every tenant an
``account_opened``, a purchase and for some auto-recharge or a minute pool)
and a stream of CDR messages:

- tenants drawn by a Zipf law (a few tenants make most calls, as in real
  multi-tenant telephony), each with a home country and a calling plan;
- a mix of the spec's call types: domestic and international ``outbound``
  calls, conference dial-out, toll-free dial-in;
- log-normal durations (most calls last a minute or two, a few last hours),
  with some unanswered zero-second calls;
- a configurable share of duplicates (a recent CDR re-sent byte for byte) and
  of bad records, each labelled with the rejection code the rater must give.

Everything comes from one ``random.Random(seed)`` and the config, so the same
config gives the same bytes. CDR values are filled into pre-built byte
templates rather than built as dicts and dumped: half a million CDRs take a
few seconds, which keeps a benchmark's set-up short.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate

import orjson

from rater.core.clock import DAY, HOUR, SECOND, format_time, month_of
from rater.core.errors import INVALID_FIELD, INVALID_JSON, NO_TARIFF, UNKNOWN_ACCOUNT
from rater.core.topics import ACCOUNT_EVENTS, TARIFFS

GOOD = "good"
DUPLICATE = "duplicate"
BAD_KINDS = (INVALID_JSON, INVALID_FIELD, UNKNOWN_ACCOUNT, NO_TARIFF)


# Alpha-2 code, E.164 country code and weight as a home or destination country, by
# the share of business calls. Country codes are prefix-free, so a country's rows
# never shadow another's.
_COUNTRY_TABLE = """
    US 1 30   DE 49 14  GB 44 12  FR 33 9   IT 39 5   ES 34 5   NL 31 4   CH 41 3
    AT 43 3   SE 46 2   PL 48 3   BE 32 2   DK 45 1   NO 47 1   FI 358 1  IE 353 2
    PT 351 1  CZ 420 1  HU 36 1   RO 40 1   GR 30 1   RU 7 1    TR 90 1   IL 972 1
    AE 971 1  EG 20 1   ZA 27 1   IN 91 6   PK 92 1   CN 86 3   HK 852 1  JP 81 3
    KR 82 1   SG 65 2   MY 60 1   ID 62 1   PH 63 1   TH 66 1   VN 84 1   AU 61 3
    NZ 64 1   BR 55 3   MX 52 2   AR 54 1   CL 56 1   CO 57 1   PE 51 1
"""
_FIELDS = _COUNTRY_TABLE.split()
COUNTRIES = tuple(
    (_FIELDS[i], _FIELDS[i + 1], int(_FIELDS[i + 2])) for i in range(0, len(_FIELDS), 3)
)
TOLLFREE = ("800", "1800", "1888")  # dialled after the country code
NO_TARIFF_HEAD = "0"  # no country code starts with 0, so no row ever matches

# Outbound domestic, outbound international, conference dial-out, toll-free dial-in.
CALL_MIX = (("domestic", 0.45), ("international", 0.15), ("dialout", 0.2), ("tollfree", 0.2))
PLAN_MIX = (("domestic", 0.5), ("domestic_international", 0.3), ("pay_as_you_go", 0.2))
MEDIAN_DURATION_S = 90
DURATION_SIGMA = 1.1
UNANSWERED_SHARE = 0.04
MAX_COST_PER_CDR = 1.5  # EUR: rates are capped so that an average call costs less

CDR_TEMPLATE = (
    b'{"cdr_id":"%b","tenant_id":"%b","user_id":"u-%d","call_type":"%b",%b'
    b'"origin_country":"%b","destination":"+%b","started_at":"%b","duration_s":%d}'
)


@dataclass(frozen=True)
class TrafficConfig:
    """What to generate. ``end_us`` is the start time of the last CDR (epoch µs).

    The rater rejects times more than 5 minutes ahead of its wall clock and
    more than 35 days behind a tenant's clock, so callers pass a recent time.
    """

    end_us: int
    cdrs: int = 10_000
    tenants: int = 100
    tariff_rows: int = 1_000
    seed: int = 1
    dup_share: float = 0.0
    bad_share: float = 0.0
    zipf_s: float = 1.0
    span_s: int = 6 * 3600
    recharge_share: float = 0.1
    nce_share: float = 0.05
    currency: str = "EUR"
    cdr_id_prefix: str = "c"

    def __post_init__(self) -> None:
        for name in ("dup_share", "bad_share", "recharge_share", "nce_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.dup_share + self.bad_share > 1.0:
            raise ValueError("dup_share + bad_share must not exceed 1")
        if self.cdrs < 0 or self.tenants < 1 or self.span_s < 1:
            raise ValueError("cdrs >= 0, tenants >= 1 and span_s >= 1 are required")

    @property
    def start_us(self) -> int:
        return self.end_us - self.span_s * SECOND


@dataclass
class Tenant:
    """One generated tenant and the byte pieces its CDRs are made of."""

    tenant_id: str
    home: int  # index into COUNTRIES
    plan: str
    billing_model: str
    auto_recharge: bool
    language: str
    key: bytes = b""
    plan_part: bytes = b""


@dataclass
class Counts:
    """How many CDR messages of each kind a stream held (filled while it is generated)."""

    by_kind: dict[str, int] = field(default_factory=dict)
    per_tenant: dict[str, int] = field(default_factory=dict)  # good CDRs by tenant

    def add(self, kind: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    @property
    def good(self) -> int:
        return self.by_kind.get(GOOD, 0)


def zipf_weights(count: int, s: float) -> list[float]:
    """Weight of rank ``i`` (from 0) proportional to ``1 / (i + 1) ** s``, normalised."""
    raw = [1.0 / (i + 1) ** s for i in range(count)]
    total = sum(raw)
    return [w / total for w in raw]


def tenant_name(index: int) -> str:
    return f"tenant-{index:06d}"


class Traffic:
    """The tenants, tariff rows and messages of one configuration."""

    def __init__(self, config: TrafficConfig) -> None:
        self.config = config
        rng = random.Random(f"{config.seed}:setup")
        self.weights = zipf_weights(config.tenants, config.zipf_s)
        self.tenants = [self._tenant(i, rng) for i in range(config.tenants)]
        self.rows = tariff_rows(config.tariff_rows, config.currency, config.start_us, rng)
        self._prefixes = _prefixes_by_kind(self.rows)

    # ------------------------------------------------------------------ set-up messages

    def _tenant(self, index: int, rng: random.Random) -> Tenant:
        home = rng.choices(range(len(COUNTRIES)), [c[2] for c in COUNTRIES])[0]
        plan = rng.choices([p for p, _ in PLAN_MIX], [w for _, w in PLAN_MIX])[0]
        nce = rng.random() < self.config.nce_share
        recharge = not nce and rng.random() < self.config.recharge_share
        tenant = Tenant(
            tenant_name(index),
            home,
            plan,
            "nce" if nce else "prepaid",
            recharge,
            rng.choice(("en", "en", "de")),
        )
        tenant.key = tenant.tenant_id.encode()
        tenant.plan_part = b'"plan":"%b",' % plan.encode()
        return tenant

    def tariff_messages(self) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` of every tariff row, keyed by tariff id."""
        return [(row["tariff_id"].encode(), orjson.dumps(row)) for row in self.rows]

    def account_messages(self) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` of the account events that make every tenant ready to rate.

        Prepaid tenants buy credits enough for their expected share of the
        traffic; auto-recharge tenants buy less, so that some of them ask for a
        top-up (which nobody answers) and go below zero; NCE tenants cannot buy
        and pay by overage.
        """
        opened = self.config.start_us - 30 * DAY
        months = sorted({month_of(self.config.start_us), month_of(self.config.end_us)})
        out: list[tuple[bytes, bytes]] = []
        for tenant, weight in zip(self.tenants, self.weights, strict=True):
            expected = weight * self.config.cdrs * MAX_COST_PER_CDR

            def event(kind: str, n: str, at: int, t: Tenant = tenant, **fields: object) -> None:
                body = {
                    "type": kind,
                    "event_id": f"{t.tenant_id}:{n}",
                    "tenant_id": t.tenant_id,
                    "at": format_time(at),
                    **fields,
                }
                out.append((t.key, orjson.dumps(body)))

            event(
                "account_opened",
                "open",
                opened,
                currency=self.config.currency,
                billing_model=tenant.billing_model,
                language=tenant.language,
                contact_email=f"billing@{tenant.tenant_id}.example.com",
            )
            if tenant.billing_model == "prepaid":
                share = 0.3 if tenant.auto_recharge else 2.0
                event(
                    "credits_purchased",
                    "buy-1",
                    opened + HOUR,
                    amount=str(math.ceil(20 + share * expected)),
                )
            if tenant.auto_recharge:
                event(
                    "auto_recharge_configured",
                    "ar-1",
                    opened + HOUR,
                    enabled=True,
                    trigger_balance="10",
                    recharge_amount="100",
                )
            if tenant.plan != "pay_as_you_go":
                for month in months:
                    event(
                        "minute_pool_allocated",
                        f"pool-d-{month}",
                        opened + 2 * HOUR,
                        pool="domestic",
                        month=month,
                        minutes=500,
                    )
            if tenant.plan == "domestic_international":
                for month in months:
                    event(
                        "minute_pool_allocated",
                        f"pool-i-{month}",
                        opened + 2 * HOUR,
                        pool="international",
                        month=month,
                        minutes=100,
                    )
        return out

    def setup_messages(self) -> list[tuple[str, bytes, bytes]]:
        """``(topic, key, value)``: every tariff row, then every account event."""
        tariffs = [(TARIFFS, k, v) for k, v in self.tariff_messages()]
        return tariffs + [(ACCOUNT_EVENTS, k, v) for k, v in self.account_messages()]

    # ------------------------------------------------------------------------ the CDRs

    def cdrs(self, counts: Counts | None = None) -> Iterator[tuple[bytes, bytes, str]]:
        """``(key, value, kind)`` for every CDR message, in production order.

        ``kind`` is :data:`GOOD`, :data:`DUPLICATE` or the rejection code a bad
        record must get. Start times rise evenly over the configured span, so
        each tenant's clock only moves forward.
        """
        cfg = self.config
        rng = random.Random(f"{cfg.seed}:cdrs:{cfg.cdr_id_prefix}")
        step = (cfg.span_s * SECOND) // max(cfg.cdrs - 1, 1)
        dup_at, bad_at = cfg.dup_share, cfg.dup_share + cfg.bad_share
        recent: list[tuple[bytes, bytes]] = []  # good CDRs that may be re-sent
        draw = _chunked_choices(rng, self.tenants, self.weights)
        prefix = cfg.cdr_id_prefix.encode()
        for i in range(cfg.cdrs):
            tenant = next(draw)
            u = rng.random()
            started = format_time((cfg.start_us + i * step) // SECOND * SECOND).encode()
            if u < dup_at and recent:
                key, value = recent[rng.randrange(len(recent))]
                kind = DUPLICATE
            elif dup_at <= u < bad_at:
                kind = BAD_KINDS[rng.randrange(len(BAD_KINDS))]
                key, value = self._bad(kind, tenant, b"%b-%d" % (prefix, i), started, rng)
            else:
                key, value = tenant.key, self._good(tenant, b"%b-%d" % (prefix, i), started, rng)
                kind = GOOD
                if len(recent) < 1024:
                    recent.append((key, value))
                else:
                    recent[rng.randrange(1024)] = (key, value)
            if counts is not None:
                counts.add(kind)
                if kind == GOOD:
                    counts.per_tenant[tenant.tenant_id] = (
                        counts.per_tenant.get(tenant.tenant_id, 0) + 1
                    )
            yield key, value, kind

    def _good(
        self,
        tenant: Tenant,
        cdr_id: bytes,
        started: bytes,
        rng: random.Random,
        destination: bytes | None = None,
    ) -> bytes:
        call = _CALL_KINDS[_pick(rng.random(), _CALL_CUMULATIVE)]
        if call == "domestic":
            country = tenant.home
        elif call == "international":
            country = _pick_country(rng, exclude=tenant.home)
        else:
            country = tenant.home if rng.random() < 0.7 else _pick_country(rng, tenant.home)
        call_type = b"outbound" if call in ("domestic", "international") else _CALL_TYPE[call]
        if destination is None:
            prefixes = self._prefixes[(call_type, country)]
            destination = _number(prefixes[rng.randrange(len(prefixes))], rng)
        duration = 0
        if rng.random() >= UNANSWERED_SHARE:
            duration = min(int(rng.lognormvariate(_MU, DURATION_SIGMA)) + 1, 86_400)
        return CDR_TEMPLATE % (
            cdr_id,
            tenant.key,
            rng.randrange(1, 200),
            call_type,
            tenant.plan_part if call_type == b"outbound" else b"",
            COUNTRY_BYTES[tenant.home],
            destination,
            started,
            duration,
        )

    def _bad(
        self, kind: str, tenant: Tenant, cdr_id: bytes, started: bytes, rng: random.Random
    ) -> tuple[bytes, bytes]:
        """One bad record of ``kind``: what telephony systems really send wrong."""
        if kind == INVALID_JSON:  # cut off in the middle, as by a crashed writer
            value = self._good(tenant, cdr_id, started, rng)
            return tenant.key, value[: len(value) // 2]
        if kind == INVALID_FIELD:
            value = self._good(tenant, cdr_id, started, rng)
            broken = rng.choice(
                (
                    (b'"duration_s":', b'"duration_s":-1'),  # a negative duration
                    (b'"destination":"+', b'"destination":"'),  # no leading +
                    (b'"started_at":"', b'"started_at":"yesterday '),  # not a time
                )
            )
            return tenant.key, value.replace(*broken, 1)
        if kind == UNKNOWN_ACCOUNT:
            ghost = Tenant(
                f"ghost-{rng.randrange(10**6):06d}",
                tenant.home,
                tenant.plan,
                "prepaid",
                False,
                "en",
            )
            ghost.key = ghost.tenant_id.encode()
            ghost.plan_part = tenant.plan_part
            return ghost.key, self._good(ghost, cdr_id, started, rng)
        # NO_TARIFF: a well-formed number no tariff row covers
        number = _number(NO_TARIFF_HEAD, rng)
        return tenant.key, self._good(tenant, cdr_id, started, rng, destination=number)


# -------------------------------------------------------------------------- the tariffs


def tariff_rows(count: int, currency: str, window_start: int, rng: random.Random) -> list[dict]:
    """At least one row per country and call type, then longer prefixes up to ``count``.

    The base rows guarantee that every generated good CDR finds a tariff.
    Longer prefixes (mobile ranges, cities, toll-free blocks) make lookups
    realistic; one in ten has had a price change in the CDR window, so it
    has an old and a current row, as real tariff tables do.
    """
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()
    change_at = format_time(window_start + HOUR)

    def add(
        call_type: str, prefix: str, country: int, rate: tuple[int, int], base: bool = False
    ) -> None:
        if (call_type, prefix) in seen:
            return
        seen.add((call_type, prefix))
        row = {
            "tariff_id": f"tr-{len(rows):06d}",
            "call_type": call_type,
            "prefix": prefix,
            "country": COUNTRIES[country][0],
            "currency": currency,
            "rate_per_minute": f"0.{rng.randint(*rate):04d}",
            "connection_fee": rng.choice(("0", "0", "0", "0.01")),
            "first_increment_s": rng.choice((60, 60, 30, 1)),
            "increment_s": rng.choice((60, 6, 1)),
            "effective_from": "2020-01-01T00:00:00Z",
            "effective_to": None,
        }
        if not base and rng.random() < 0.1:
            rows.append({**row, "effective_to": change_at})
            row = {**row, "tariff_id": f"tr-{len(rows):06d}", "effective_from": change_at}
        rows.append(row)

    for index, (_, code, _) in enumerate(COUNTRIES):
        add("outbound", code, index, (100, 3000), base=True)
        add("conference_dialout", code, index, (100, 3000), base=True)
        for head in TOLLFREE[:2] if code == "1" else TOLLFREE[:1]:
            add("conference_tollfree_dialin", code + head, index, (100, 600), base=True)
    kinds = ("outbound", "outbound", "conference_dialout", "conference_tollfree_dialin")
    while len(rows) < count:
        index = rng.choices(range(len(COUNTRIES)), [c[2] for c in COUNTRIES])[0]
        call_type = rng.choice(kinds)
        base = COUNTRIES[index][1]
        if call_type == "conference_tollfree_dialin":
            base += TOLLFREE[0]
        digits = "".join(rng.choices("0123456789", k=rng.randint(1, 5)))
        rate = (100, 600) if call_type == "conference_tollfree_dialin" else (100, 3000)
        add(call_type, (base + digits)[:12], index, rate)
    return rows


def _prefixes_by_kind(rows: list[dict]) -> dict[tuple[bytes, int], list[bytes]]:
    """Prefixes to dial, by (call type, country index): every row's prefix is reachable."""
    country_index = {c[0]: i for i, c in enumerate(COUNTRIES)}
    out: dict[tuple[bytes, int], list[bytes]] = {}
    for row in rows:
        key = (row["call_type"].encode(), country_index[row["country"]])
        out.setdefault(key, []).append(row["prefix"].encode())
    return out


# ------------------------------------------------------------------------- fast helpers

COUNTRY_BYTES = [c[0].encode() for c in COUNTRIES]
_COUNTRY_CUMULATIVE = list(accumulate(c[2] for c in COUNTRIES))
_CALL_KINDS = [k for k, _ in CALL_MIX]
_CALL_CUMULATIVE = list(accumulate(w for _, w in CALL_MIX))
_CALL_TYPE = {"dialout": b"conference_dialout", "tollfree": b"conference_tollfree_dialin"}
_MU = math.log(MEDIAN_DURATION_S)


def _pick(u: float, cumulative: list[float]) -> int:
    """Index of a weighted choice for ``u`` in [0, 1) (a handful of weights: a scan)."""
    target = u * cumulative[-1]
    for i, bound in enumerate(cumulative):
        if target < bound:
            return i
    return len(cumulative) - 1


def _pick_country(rng: random.Random, exclude: int) -> int:
    while True:
        index = _pick(rng.random(), _COUNTRY_CUMULATIVE)
        if index != exclude:
            return index


def _number(prefix: bytes | str, rng: random.Random) -> bytes:
    """A full number under ``prefix``: 11 or 12 digits, at least 3 after the prefix."""
    head = prefix.encode() if isinstance(prefix, str) else prefix
    rest = max(11 + rng.randrange(2) - len(head), 3)
    return b"%b%0*d" % (head, rest, rng.randrange(10**rest))


def _chunked_choices(
    rng: random.Random, tenants: list[Tenant], weights: list[float], chunk: int = 4096
) -> Iterator[Tenant]:
    """Zipf-distributed tenants, drawn in chunks: one ``choices`` call per 4,096 draws."""
    cumulative = list(accumulate(weights))
    while True:
        yield from rng.choices(tenants, cum_weights=cumulative, k=chunk)
