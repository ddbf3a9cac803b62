"""A deterministic demo payment platform, written set-based into the source Postgres database.

Every random choice is a pure function of (seed, row number, salt) evaluated inside Postgres with
`hashint8extended`, so the same arguments give byte-identical tables and 10M payments load in
minutes: rows are produced by `INSERT ... SELECT` over `generate_series`, never one by one.
Python only plans what is small: the per-day volume (weekly seasonality), the payout calendar,
and the payout carry rule, which runs over per-payout-day sums (a few per account and day).

A small share of paid payouts is reversed (Stripe's payout reversal: the bank account is debited
and the money returns to the balance): the payout gets `reversed_at`, a `payout_reversal`
balance transaction credits its amount back, and the account's next payout sweeps it (its amount
grows by the reversed amount), so every ledger invariant (exports/source/invariants.py) holds.

The load runs in one transaction: the source tables' secondary indexes and foreign keys are
dropped first and recreated from their catalog definitions at the end (bulk index builds and one
validating join per foreign key are much faster than per-row maintenance and per-row RI checks).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

from exports import db
from exports.errors import InvalidParameter
from exports.settings import Settings

# Children before parents, so one TRUNCATE lists them in a valid order.
SOURCE_TABLES = ("balance_transactions", "payouts", "disputes", "refunds", "payments", "customers",
                 "accounts")


class SourceNotEmpty(RuntimeError):
    """The source database already holds platform data and reset=True was not given."""


@dataclass(frozen=True)
class DemoAccount:
    name: str
    email: str
    country: str
    timezone: str
    currency: str
    payout_schedule: str  # daily | weekly (weekly payouts run on Mondays)
    payout_delay_days: int
    volume_share: float
    second_currency: str | None = None  # some charges in another currency (own payouts)
    second_currency_share: float = 0.0


DEMO_ACCOUNTS = (
    DemoAccount("Acme Outdoor Supply", "finance@acme-outdoor.example", "US", "America/New_York",
                "usd", "daily", 2, 0.36),
    DemoAccount("Bergwerk Kaffee GmbH", "buchhaltung@bergwerk.example", "DE", "Europe/Berlin",
                "eur", "weekly", 3, 0.20, "gbp", 0.15),
    DemoAccount("Thames Tea Company", "accounts@thamestea.example", "GB", "Europe/London",
                "gbp", "daily", 3, 0.15),
    DemoAccount("Sakura Stationery KK", "keiri@sakura-stationery.example", "JP", "Asia/Tokyo",
                "jpy", "weekly", 4, 0.12),
    DemoAccount("Gulf Gadgets", "finance@gulfgadgets.example", "KW", "Asia/Kuwait",
                "kwd", "daily", 7, 0.05),
    DemoAccount("Coral Coast Surf", "money@coralcoastsurf.example", "AU", "Australia/Sydney",
                "aud", "daily", 2, 0.12),
)


MAX_ACCOUNTS = 1_000_000


def demo_accounts(count: int | None = None) -> tuple[DemoAccount, ...]:
    """The platform's accounts: the six DEMO_ACCOUNTS by default; with `count`, that many, the
    first six as in DEMO_ACCOUNTS and the others cycling through them as templates ("#7", ...),
    each template's volume split evenly over its copies (a platform of many small merchants)."""
    if count is None:
        return DEMO_ACCOUNTS
    templates = len(DEMO_ACCOUNTS)
    copies = [count // templates + (1 if i < count % templates else 0) for i in range(templates)]
    accounts = []
    for number in range(count):
        template = DEMO_ACCOUNTS[number % templates]
        share = template.volume_share / copies[number % templates]
        if number < templates:
            accounts.append(replace(template, volume_share=share))
            continue
        user, domain = template.email.split("@")
        accounts.append(replace(template, name=f"{template.name} #{number + 1}",
                                email=f"{user}+{number + 1}@{domain}", volume_share=share))
    return tuple(accounts)


@dataclass(frozen=True)
class CurrencyPricing:
    """Amounts and fees of one currency, in its minor units (integer math only)."""

    median_amount: int  # of the log-normal charge amount
    min_amount: int
    fee_per_mille: int  # processing fee rate, 29 = 2.9 %
    fee_fixed: int
    dispute_fee: int
    platform_fee: int  # monthly standalone fee


PRICING = {
    "usd": CurrencyPricing(4500, 50, 29, 30, 1500, 2900),
    "eur": CurrencyPricing(4000, 50, 29, 30, 1500, 2900),
    "gbp": CurrencyPricing(3500, 50, 29, 30, 1500, 2900),
    "aud": CurrencyPricing(5500, 50, 29, 30, 1500, 2900),
    "jpy": CurrencyPricing(5000, 50, 36, 0, 2000, 4000),  # whole yen, 3.6 %, no fixed part
    "kwd": CurrencyPricing(15000, 500, 29, 100, 5000, 9000),  # fils; 500 keeps net > 0
}
AMOUNT_SIGMA = 0.9
WEEKDAY_FACTOR = (1.0, 1.02, 1.03, 1.05, 1.12, 0.62, 0.5)  # Monday .. Sunday (local days)
# Relative volume per local hour: quiet nights, a lunch bump and an evening peak.
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 13, 14, 16, 15, 13, 12, 12, 13, 15, 17, 16, 12, 7, 4)
FIRST_NAMES = ("Anna", "Ben", "Chloé", "Daniel", "Emma", "Felix", "Grace", "Hiro", "Ines", "Jonas",
               "Kai", "Lena", "Mia", "Noah", "Olivia", "Paul", "Qin", "Rosa", "Sami", "Tom",
               "Uma", "Vera", "Will", "Yuki", "Zoe", "Aiko", "Omar", "Fatima", "Liam", "Sofia")
LAST_NAMES = ("Smith", "Müller", "Tanaka", "Brown", "Schmidt", "Sato", "Wilson", "Fischer",
              "Al-Sabah", "Taylor", "Weber", "Suzuki", "Jones", "Meyer", "Kobayashi", "Walker",
              "Wagner", "Nguyen", "Clarke", "Becker", "Ito", "Hughes", "Hoffmann", "Evans")
CARD_COUNTRIES = ("US", "DE", "GB", "JP", "AU", "FR", "CA", "NL", "KW", "IT")

# Salts: one per independent random draw, so draws never correlate.
_SALT = {name: i * 7919 for i, name in enumerate((
    "account_id", "customer_id", "customer_name", "customer_created", "customer_pick", "guest",
    "payment_id", "pi_id", "hour", "second", "currency", "amount1", "amount2", "status", "event",
    "partial", "refund_delay", "dispute_delay", "dispute_outcome", "dispute_close", "brand",
    "funding", "card_country", "method", "failure", "refund_id", "dispute_id", "txn_id",
    "payout_id", "bank", "adjustment", "adjustment_amount", "dispute_reason", "refund_reason",
    "first_name", "last_name", "described", "invoiced", "invoice_id", "payout_reversal",
), start=1)}

# Balance transaction kinds: the high bits of a txn id's sequence number, so ids never collide.
_TXN_KIND = {"charge": 1, "refund": 2, "dispute": 3, "dispute_reversal": 4, "fee": 5,
             "adjustment": 6, "payout": 7, "payout_reversal": 8}
# Share of paid payouts that are reversed (each needs a later payout to sweep the money back).
PAYOUT_REVERSAL_SHARE = 0.06


def _mix(seed: int, salt: int) -> int:
    """The hash seed of one draw: a bigint from (seed, salt)."""
    return (seed * 1_000_003 + salt * 2_654_435_761) % (2**63 - 1)


def uniform_sql(seed: int, salt: str, key: str = "n") -> str:
    """SQL for a uniform double in [0, 1) that depends only on (seed, key, salt)."""
    return (f"(((hashint8extended(({key})::bigint, {_mix(seed, _SALT[salt])}) >> 11)"
            f" & 9007199254740991)::float8 / 9007199254740992.0)")


def id_sql(prefix: str, seed: int, salt: str, key: str) -> str:
    """SQL for a Stripe-like id: prefix, the row number in hex (ids sort in load order, which
    keeps primary-key btrees append-only) and 16 seed-dependent hex digits."""
    return (f"('{prefix}' || lpad(to_hex(({key})::bigint), 10, '0') || "
            f"lpad(to_hex(hashint8extended(({key})::bigint, {_mix(seed, _SALT[salt])})), 16, '0'))")


def txn_id_sql(seed: int, kind: str, key: str) -> str:
    return id_sql("txn_", seed, "txn_id", f"({_TXN_KIND[kind]}::bigint << 36) | ({key})::bigint")


def charge_fee_sql(amount: str, currency: str) -> str:
    """Processing fee of a charge: rate (half-up, integer math) plus the fixed part."""
    rate = " ".join(f"WHEN '{c}' THEN {p.fee_per_mille}" for c, p in PRICING.items())
    fixed = " ".join(f"WHEN '{c}' THEN {p.fee_fixed}" for c, p in PRICING.items())
    return (f"(({amount}) * (CASE {currency} {rate} END) + 500) / 1000"
            f" + (CASE {currency} {fixed} END)")


@dataclass
class GenerationSummary:
    seed: int
    start: datetime  # generated activity lies in [start, end)
    end: datetime
    rows: dict[str, int]  # table -> row count
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time


@dataclass(frozen=True)
class PayoutSlot:
    """Sum of the nets that become payable at one payout time of one account and currency."""

    account_no: int
    currency: str
    payout_day: date
    net: int


@dataclass(frozen=True)
class PlannedPayout:
    account_no: int
    currency: str
    payout_day: date  # the payout's own day; it also settles the carried earlier days
    amount: int
    settles_days: tuple[date, ...]


def plan_payouts(slots: Iterable[PayoutSlot]) -> list[PlannedPayout]:
    """Automatic payouts: each payout day sweeps everything that became available since the
    previous payout. A day whose sweep sums to <= 0 pays nothing; its transactions carry to the
    next payout day. Slots must come ordered by (account_no, currency, payout_day); carries left
    at the end stay unsettled."""
    planned: list[PlannedPayout] = []
    group: tuple[int, str] | None = None
    carried: list[date] = []
    running = 0
    for slot in slots:
        if (slot.account_no, slot.currency) != group:
            group, carried, running = (slot.account_no, slot.currency), [], 0
        carried.append(slot.payout_day)
        running += slot.net
        if running > 0:
            planned.append(PlannedPayout(slot.account_no, slot.currency, slot.payout_day, running,
                                         tuple(carried)))
            carried, running = [], 0
    return planned


def day_plan(seed: int, payments: int, start: date, days: int,
             accounts: tuple[DemoAccount, ...] = DEMO_ACCOUNTS) -> list[tuple[int, date, int, int]]:
    """(account_no, local day, first payment number, count): weekly seasonality, slow growth and
    day-to-day noise, rounded cumulatively so the counts add up to exactly `payments`."""
    rng = random.Random(seed)
    weights: list[tuple[int, date, float]] = []
    for i in range(days):
        day = start + timedelta(days=i)
        for account_no, account in enumerate(accounts, start=1):
            weight = (account.volume_share * WEEKDAY_FACTOR[day.weekday()]
                      * (1 + 0.25 * i / days) * (0.9 + 0.2 * rng.random()))
            weights.append((account_no, day, weight))
    total = sum(w for _, _, w in weights)
    plan, cumulative, assigned = [], 0.0, 0
    for account_no, day, weight in weights:
        cumulative += weight
        upto = round(payments * cumulative / total)
        if upto > assigned:
            plan.append((account_no, day, assigned + 1, upto - assigned))
            assigned = upto
    return plan


def _hour_table() -> str:
    """A 256-entry SQL int[] mapping a uniform draw to a local hour (inverse CDF)."""
    total = sum(HOUR_WEIGHTS)
    table, cumulative = [], 0
    for hour, weight in enumerate(HOUR_WEIGHTS):
        cumulative += weight
        while len(table) < round(256 * cumulative / total):
            table.append(hour)
    return "'{" + ",".join(map(str, table)) + "}'::int[]"


def _text_array(values: Iterable[str]) -> str:
    quoted = ",".join('"' + v.replace('"', '') + '"' for v in values)
    return "'{" + quoted.replace("'", "''") + "}'::text[]"


@contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    seconds[step] = round(time.perf_counter() - started, 3)


def _validate(seed: int, payments: int, days: int, accounts: int | None = None) -> None:
    if not isinstance(seed, int) or seed < 0:
        raise InvalidParameter(f"seed must be a non-negative integer, got {seed!r}", param="seed")
    if not isinstance(payments, int) or not 1 <= payments <= 1_000_000_000:
        raise InvalidParameter(f"payments must be between 1 and 1,000,000,000, got {payments!r}",
                               param="payments")
    if not isinstance(days, int) or not 1 <= days <= 3660:
        raise InvalidParameter(f"days must be between 1 and 3660, got {days!r}", param="days")
    if accounts is not None and (not isinstance(accounts, int) or isinstance(accounts, bool)
                                 or not 1 <= accounts <= MAX_ACCOUNTS):
        raise InvalidParameter(f"accounts must be between 1 and {MAX_ACCOUNTS:,}, got {accounts!r}",
                               param="accounts")


def _source_has_data(conn: psycopg.Connection) -> bool:
    probes = " OR ".join(f"EXISTS (SELECT 1 FROM {t})" for t in SOURCE_TABLES)
    return bool(conn.execute(f"SELECT {probes}").fetchone()[0])


def _drop_secondary_structures(conn: psycopg.Connection) -> list[str]:
    """Drop the source tables' foreign keys and non-unique indexes; return the statements that
    recreate them exactly as the migrations defined them."""
    tables = list(SOURCE_TABLES)
    fks = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 1, 2", (tables,)).fetchall()
    indexes = conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indrelid = ANY(%s::regclass[]) AND NOT indisunique ORDER BY 1", (tables,)).fetchall()
    recreate: list[str] = []
    for table, name, definition in fks:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.SQL(table), sql.Identifier(name)))
        recreate.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.SQL(table), sql.Identifier(name), sql.SQL(definition)).as_string(conn))
    for name, definition in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
        recreate.insert(0, definition)  # indexes first: the FK validation joins can use them
    return recreate


def generate_platform(settings: Settings | None = None, *, seed: int = 42, payments: int = 20_000,
                      days: int = 90, end_date: date | None = None,
                      reset: bool = False, accounts: int | None = None) -> GenerationSummary:
    """Write a deterministic demo platform into the migrated source database.

    Same (seed, payments, days, end_date, accounts) -> identical table contents. Activity lies in
    [end_date - days, end_date) (UTC midnights; end_date defaults to today UTC). `accounts`: how
    many merchants (default: the six DEMO_ACCOUNTS; see demo_accounts). Refuses when the source
    tables hold data, unless reset=True, which truncates them first.
    """
    _validate(seed, payments, days, accounts)
    end_date = end_date or datetime.now(UTC).date()
    start_date = end_date - timedelta(days=days)
    summary = GenerationSummary(seed=seed, rows={},
                                start=datetime.combine(start_date, datetime.min.time(), UTC),
                                end=datetime.combine(end_date, datetime.min.time(), UTC))
    timings = summary.seconds
    with db.connect("source", settings) as conn:
        conn.execute("SET temp_buffers = '256MB'")  # before the session's first temp table
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
        conn.execute("SET LOCAL timezone = 'UTC'")
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('payreports.generate_platform'))")
        if _source_has_data(conn):
            if not reset:
                raise SourceNotEmpty(
                    "the source database already holds platform data; generate_platform refuses "
                    "to mix two platforms (pass reset=True to truncate the source tables first)")
            conn.execute(f"TRUNCATE {', '.join(SOURCE_TABLES)}")
        recreate = _drop_secondary_structures(conn)
        _Loader(conn, seed, payments, start_date, end_date, days, timings,
                demo_accounts(accounts)).run()
        with _timed(timings, "indexes_and_foreign_keys"):
            for statement in recreate:
                conn.execute(statement)
        for table in SOURCE_TABLES:
            summary.rows[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        conn.commit()
    with db.connect("source", settings, autocommit=True) as conn, _timed(timings, "analyze"):
        conn.execute(f"ANALYZE {', '.join(SOURCE_TABLES)}")
    return summary


class _Loader:
    """The steps of one generation, in one transaction on `conn`."""

    def __init__(self, conn: psycopg.Connection, seed: int, payments: int, start_date: date,
                 end_date: date, days: int, timings: dict[str, float],
                 accounts: tuple[DemoAccount, ...] = DEMO_ACCOUNTS):
        self.conn, self.seed, self.payments, self.days = conn, seed, payments, days
        self.accounts_plan = accounts
        self.start_date, self.end_date, self.timings = start_date, end_date, timings
        self.start_ts = f"'{start_date.isoformat()} 00:00:00+00'::timestamptz"
        self.end_ts = f"'{end_date.isoformat()} 00:00:00+00'::timestamptz"

    def u(self, salt: str, key: str = "n") -> str:
        return uniform_sql(self.seed, salt, key)

    def run(self) -> None:
        steps = (("plan", self.plan), ("accounts", self.accounts), ("customers", self.customers),
                 ("payments", self.payments_table), ("refunds", self.refunds),
                 ("disputes", self.disputes), ("ledger_staging", self.ledger_staging),
                 ("payouts", self.payouts), ("balance_transactions", self.balance_transactions),
                 ("payout_reversals", self.payout_reversals))
        for step, fn in steps:
            with _timed(self.timings, step):
                fn()

    def _copy(self, table: str, columns: str, rows: Iterable[tuple]) -> None:
        with self.conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    # --- small plans, from Python ---------------------------------------------------------
    def plan(self) -> None:
        c = self.conn
        c.execute("CREATE TEMP TABLE gen_accounts (account_no int PRIMARY KEY, name text, email text,"
                  " country text, tz text, currency text, second_currency text,"
                  " second_share float8, schedule text, delay_days int, customer_first bigint,"
                  " customer_count bigint) ON COMMIT DROP")
        first = 1
        rows = []
        for no, a in enumerate(self.accounts_plan, start=1):
            customers = max(5, round(self.payments * a.volume_share / 6))
            rows.append((no, a.name, a.email, a.country, a.timezone, a.currency, a.second_currency,
                         a.second_currency_share, a.payout_schedule, a.payout_delay_days, first,
                         customers))
            first += customers
        self._copy("gen_accounts", "account_no, name, email, country, tz, currency,"
                   " second_currency, second_share, schedule, delay_days, customer_first,"
                   " customer_count", rows)
        c.execute("CREATE TEMP TABLE gen_pricing (currency text PRIMARY KEY, median_amount bigint,"
                  " min_amount bigint, dispute_fee bigint, platform_fee bigint) ON COMMIT DROP")
        self._copy("gen_pricing", "currency, median_amount, min_amount, dispute_fee, platform_fee",
                   [(cur, p.median_amount, p.min_amount, p.dispute_fee, p.platform_fee)
                    for cur, p in PRICING.items()])
        c.execute("CREATE TEMP TABLE gen_day_plan (account_no int, local_day date, first_n bigint,"
                  " cnt int) ON COMMIT DROP")
        self._copy("gen_day_plan", "account_no, local_day, first_n, cnt",
                   day_plan(self.seed, self.payments, self.start_date, self.days,
                            self.accounts_plan))
        # Payout calendar: a transaction available at local time t is swept by the payout at the
        # first local midnight >= t, moved to the next Monday for weekly schedules.
        c.execute("CREATE TEMP TABLE gen_calendar (account_no int, local_day date, payout_day date,"
                  " PRIMARY KEY (account_no, local_day)) ON COMMIT DROP")
        calendar = []
        for no, a in enumerate(self.accounts_plan, start=1):
            for i in range(-2, self.days + 2):
                day = self.start_date + timedelta(days=i)
                payout_day = day + timedelta(days=(7 - day.weekday()) % 7) \
                    if a.payout_schedule == "weekly" else day
                calendar.append((no, day, payout_day))
        self._copy("gen_calendar", "account_no, local_day, payout_day", calendar)

    def accounts(self) -> None:
        self.conn.execute(f"""
            INSERT INTO accounts (id, name, email, country, timezone, default_currency,
                                  payout_schedule, payout_delay_days, created_at, updated_at)
            SELECT {id_sql('acct_', self.seed, 'account_id', 'account_no')}, name, email, country,
                   tz, currency, schedule, delay_days,
                   -- (n - 1) % 20 + 1 = n for the six demo accounts; many accounts cycle
                   -- through 20 creation days, all before the generated range.
                   {self.start_ts} - interval '400 days' + ((account_no - 1) % 20 + 1) * interval '17 days',
                   {self.start_ts} - interval '30 days' + ((account_no - 1) % 20 + 1) * interval '1 day'
            FROM gen_accounts ORDER BY account_no""")

    def customers(self) -> None:
        u = self.u
        first = _text_array(FIRST_NAMES)
        last = _text_array(LAST_NAMES)
        self.conn.execute(f"""
            INSERT INTO customers (id, account_id, email, name, description, created_at, updated_at)
            SELECT {id_sql('cus_', self.seed, 'customer_id', 'k')}, acc.id,
                   lower(translate(fn || '.' || ln, 'éüÉÜ -', 'euEU')) || k || '@example.com',
                   fn || ' ' || ln,
                   CASE WHEN {u('described', 'k')} < 0.2 THEN 'Wholesale customer' END,
                   created, created + floor({u('customer_created', 'k')} * 86400 * 30) * interval '1 second'
            FROM gen_accounts a
            JOIN accounts acc ON acc.id = {id_sql('acct_', self.seed, 'account_id', 'a.account_no')}
            CROSS JOIN LATERAL generate_series(a.customer_first, a.customer_first + a.customer_count - 1) k
            CROSS JOIN LATERAL (SELECT
                ({first})[1 + floor({u('first_name', 'k')} * {len(FIRST_NAMES)})::int] AS fn,
                ({last})[1 + floor({u('last_name', 'k')} * {len(LAST_NAMES)})::int] AS ln,
                {self.start_ts} - interval '365 days'
                    + floor({u('customer_created', 'k')} * 86400 * 330) * interval '1 second' AS created
            ) draw""")

    # --- payments and their refunds/disputes ----------------------------------------------
    def payments_table(self) -> None:
        """Stage every payment with all its draws (refund/dispute outcome included), then write
        payments from the stage; refunds, disputes and the ledger read the same stage."""
        u, end = self.u, self.end_ts
        span = f"interval '{self.days} days'"
        refund_reasons = "'{requested_by_customer,requested_by_customer,duplicate,fraudulent}'::text[]"
        dispute_reasons = ("'{fraudulent,fraudulent,product_not_received,duplicate,"
                           "subscription_canceled,unrecognized}'::text[]")
        failures = ("'{card_declined,card_declined,insufficient_funds,expired_card,incorrect_cvc,"
                    "processing_error}'::text[]")
        self.conn.execute(f"""
            CREATE TEMP TABLE gen_payments ON COMMIT DROP AS
            -- MATERIALIZED: inlined, each stage's expressions would be copied into every use.
            WITH base AS MATERIALIZED (
                SELECT n, p.account_no, a.tz, a.delay_days,
                       CASE WHEN {u('currency')} < a.second_share THEN a.second_currency
                            ELSE a.currency END AS currency,
                       CASE WHEN {u('guest')} >= 0.1 THEN a.customer_first
                            + floor({u('customer_pick')} * a.customer_count)::bigint END AS customer_no,
                       (p.local_day + (({_hour_table()})[1 + floor({u('hour')} * 256)::int]
                            * interval '1 hour') + floor({u('second')} * 3600) * interval '1 second')
                           AT TIME ZONE a.tz AS local_at,
                       a.country
                FROM gen_day_plan p JOIN gen_accounts a USING (account_no)
                CROSS JOIN LATERAL generate_series(p.first_n, p.first_n + p.cnt - 1) n
            ), timed AS MATERIALIZED (
                -- Local days near the range's edges spill over it; wrap them back inside.
                SELECT b.*, CASE WHEN local_at < {self.start_ts} THEN local_at + {span}
                                 WHEN local_at >= {end} THEN local_at - {span}
                                 ELSE local_at END AS created_at,
                       greatest(pr.min_amount, least(99999999, round(pr.median_amount * exp({AMOUNT_SIGMA}
                           * sqrt(-2 * ln(1 - {u('amount1')})) * cos(2 * pi() * {u('amount2')})))))::bigint
                           AS amount,
                       CASE WHEN b.currency = 'eur' AND {u('method')} < 0.12 THEN 'sepa_debit'
                            ELSE 'card' END AS method
                FROM base b JOIN gen_pricing pr USING (currency)
            ), outcome AS MATERIALIZED (
                SELECT t.*,
                       CASE WHEN {u('status')} < 0.07 THEN 'failed'
                            WHEN created_at >= {end} - interval '3 days'
                                 AND (method = 'sepa_debit' OR {u('status')} >= 0.995) THEN 'pending'
                            ELSE 'succeeded' END AS base_status,
                       created_at + (3600 + floor(power({u('refund_delay')}, 2) * 86400 * 20))
                           * interval '1 second' AS refund_at,
                       created_at + (86400 * 2 + floor({u('dispute_delay')} * 86400 * 38))
                           * interval '1 second' AS dispute_at,
                       (86400 * 7 + floor({u('dispute_close')} * 86400 * 23)) * interval '1 second'
                           AS dispute_open_for
                FROM timed t
            )
            SELECT o.n, o.account_no, o.tz, o.delay_days, o.currency, o.customer_no, o.country,
                   o.created_at, o.amount, o.method,
                   CASE WHEN base_status = 'failed' THEN
                        ({failures})[1 + floor({u('failure')} * 6)::int] END AS failure_code,
                   base_status,
                   CASE WHEN is_refunded THEN CASE WHEN {u('partial')} < 0.3
                        THEN greatest(1, o.amount * (200 + floor({u('partial')} / 0.3 * 600))::bigint / 1000)
                        ELSE o.amount END END AS refund_amount,
                   CASE WHEN is_refunded THEN refund_at END AS refund_at,
                   CASE WHEN is_refunded THEN ({refund_reasons})[1 + floor({u('refund_reason')} * 4)::int]
                        END AS refund_reason,
                   CASE WHEN is_disputed THEN dispute_at END AS dispute_at,
                   CASE WHEN NOT is_disputed THEN NULL
                        WHEN dispute_at + dispute_open_for < {end} THEN
                            CASE WHEN {u('dispute_outcome')} < 0.45 THEN 'won' ELSE 'lost' END
                        WHEN dispute_at >= {end} - interval '7 days' THEN 'needs_response'
                        ELSE 'under_review' END AS dispute_status,
                   CASE WHEN is_disputed AND dispute_at + dispute_open_for < {end}
                        THEN dispute_at + dispute_open_for END AS dispute_closed_at,
                   CASE WHEN is_disputed THEN ({dispute_reasons})[1 + floor({u('dispute_reason')} * 6)::int]
                        END AS dispute_reason
            FROM outcome o
            CROSS JOIN LATERAL (SELECT
                base_status = 'succeeded' AND {u('event')} < 0.05 AND refund_at < {end} AS is_refunded,
                base_status = 'succeeded' AND {u('event')} >= 0.05 AND {u('event')} < 0.055
                    AND dispute_at < {end} AS is_disputed) ev""")
        brands = "'{visa,visa,visa,visa,visa,mastercard,mastercard,mastercard,amex,discover}'::text[]"
        self.conn.execute(f"""
            INSERT INTO payments (id, account_id, customer_id, payment_intent_id, amount,
                amount_refunded, currency, status, payment_method_type, card_brand, card_funding,
                card_country, description, statement_descriptor, failure_code, metadata,
                invoice_id, created_at, updated_at)
            SELECT {id_sql('ch_', self.seed, 'payment_id', 'g.n')}, acc.id,
                   CASE WHEN g.customer_no IS NOT NULL
                        THEN {id_sql('cus_', self.seed, 'customer_id', 'g.customer_no')} END,
                   {id_sql('pi_', self.seed, 'pi_id', 'g.n')},
                   g.amount, coalesce(g.refund_amount, 0), g.currency,
                   CASE WHEN g.dispute_at IS NOT NULL THEN 'disputed'
                        WHEN g.refund_amount = g.amount THEN 'refunded'
                        ELSE g.base_status END,
                   g.method,
                   CASE WHEN g.method = 'card' THEN
                        CASE WHEN g.country = 'JP' AND {u('brand', 'g.n')} < 0.3 THEN 'jcb'
                             ELSE ({brands})[1 + floor({u('brand', 'g.n')} * 10)::int] END END,
                   CASE WHEN g.method = 'card' THEN CASE WHEN {u('funding', 'g.n')} < 0.6 THEN 'credit'
                        WHEN {u('funding', 'g.n')} < 0.97 THEN 'debit' ELSE 'prepaid' END END,
                   CASE WHEN g.method = 'card' THEN CASE WHEN {u('card_country', 'g.n')} < 0.85 THEN g.country
                        ELSE ('{{{','.join(CARD_COUNTRIES)}}}'::text[])[1 + floor({u('card_country', 'g.n')}
                             * {len(CARD_COUNTRIES)})::int] END END,
                   'Order #' || (100000 + g.n), upper(left(acc.name, 22)), g.failure_code,
                   jsonb_build_object('order_id', 'ord_' || (100000 + g.n)),
                   -- A quarter of the known customers' payments pay an invoice.
                   CASE WHEN g.customer_no IS NOT NULL AND {u('invoiced', 'g.n')} < 0.25
                        THEN {id_sql('in_', self.seed, 'invoice_id', 'g.n')} END,
                   g.created_at,
                   greatest(g.created_at, g.refund_at, g.dispute_at, g.dispute_closed_at)
            FROM gen_payments g
            JOIN accounts acc ON acc.id = {id_sql('acct_', self.seed, 'account_id', 'g.account_no')}""")

    def refunds(self) -> None:
        self.conn.execute(f"""
            INSERT INTO refunds (id, account_id, payment_id, amount, currency, status, reason,
                                 created_at, updated_at)
            SELECT {id_sql('re_', self.seed, 'refund_id', 'n')},
                   {id_sql('acct_', self.seed, 'account_id', 'account_no')},
                   {id_sql('ch_', self.seed, 'payment_id', 'n')}, refund_amount, currency,
                   'succeeded', refund_reason, refund_at, refund_at
            FROM gen_payments WHERE refund_amount IS NOT NULL ORDER BY n""")

    def disputes(self) -> None:
        self.conn.execute(f"""
            INSERT INTO disputes (id, account_id, payment_id, amount, currency, status, reason,
                                  closed_at, created_at, updated_at)
            SELECT {id_sql('dp_', self.seed, 'dispute_id', 'n')},
                   {id_sql('acct_', self.seed, 'account_id', 'account_no')},
                   {id_sql('ch_', self.seed, 'payment_id', 'n')}, amount, currency,
                   dispute_status, dispute_reason, dispute_closed_at, dispute_at,
                   CASE dispute_status WHEN 'under_review' THEN dispute_at + interval '7 days'
                        WHEN 'needs_response' THEN dispute_at ELSE dispute_closed_at END
            FROM gen_payments WHERE dispute_at IS NOT NULL ORDER BY n""")

    # --- the ledger -------------------------------------------------------------------------
    def ledger_staging(self) -> None:
        """Every balance transaction except payouts' own, with the local day its payout sweep
        starts from (the first local midnight at or after available_on)."""
        u, s = self.u, self.seed
        c = self.conn
        c.execute("CREATE TEMP TABLE gen_bt (kind text, seq bigint, account_no int, currency text,"
                  " amount bigint, fee bigint, type text, category text, source_id text,"
                  " description text, available_on timestamptz, created_at timestamptz,"
                  " sweep_day date) ON COMMIT DROP")
        sweep_day = "((x.available_on AT TIME ZONE a.tz) + interval '1 day' - interval '1 microsecond')::date"
        insert = ("INSERT INTO gen_bt SELECT x.kind, x.seq, x.account_no, x.currency, x.amount,"
                  " x.fee, x.type, x.category, x.source_id, x.description, x.available_on,"
                  f" x.created_at, {sweep_day}"
                  " FROM ({}) x(kind, seq, account_no, currency, amount, fee, type, category,"
                  " source_id, description, available_on, created_at)"
                  " JOIN gen_accounts a ON a.account_no = x.account_no")
        charge_fee = charge_fee_sql("amount", "currency")
        c.execute(insert.format(f"""
            SELECT 'charge' AS kind, n AS seq, account_no, currency, amount, {charge_fee} AS fee,
                   'charge' AS type, 'charge' AS category,
                   {id_sql('ch_', s, 'payment_id', 'n')} AS source_id, 'Order #' || (100000 + n)
                   AS description, created_at + delay_days * interval '1 day' AS available_on,
                   created_at
            FROM gen_payments WHERE base_status = 'succeeded' ORDER BY n"""))
        c.execute(insert.format(f"""
            SELECT 'refund', n, account_no, currency, -refund_amount, 0, 'refund', 'refund',
                   {id_sql('re_', s, 'refund_id', 'n')}, 'REFUND FOR CHARGE (Order #' || (100000 + n)
                   || ')', refund_at, refund_at
            FROM gen_payments WHERE refund_amount IS NOT NULL ORDER BY n"""))
        c.execute(insert.format(f"""
            SELECT 'dispute', g.n, g.account_no, g.currency, -g.amount, pr.dispute_fee,
                   'adjustment', 'dispute', {id_sql('dp_', s, 'dispute_id', 'g.n')},
                   'Chargeback withdrawal for ' || {id_sql('ch_', s, 'payment_id', 'g.n')},
                   g.dispute_at, g.dispute_at
            FROM gen_payments g JOIN gen_pricing pr USING (currency)
            WHERE g.dispute_at IS NOT NULL ORDER BY g.n"""))
        c.execute(insert.format(f"""
            SELECT 'dispute_reversal', n, account_no, currency, amount, 0, 'adjustment',
                   'dispute_reversal', {id_sql('dp_', s, 'dispute_id', 'n')},
                   'Chargeback reversal for ' || {id_sql('ch_', s, 'payment_id', 'n')},
                   dispute_closed_at, dispute_closed_at
            FROM gen_payments WHERE dispute_status = 'won' ORDER BY n"""))
        # A monthly platform fee on the 1st (02:00 local) and a rare manual adjustment.
        c.execute(insert.format(f"""
            SELECT 'fee', a.account_no * 100000 + m.i, a.account_no, a.currency, -pr.platform_fee,
                   0, 'stripe_fee', 'fee', NULL, 'Platform fee ' || to_char(m.month, 'YYYY-MM'),
                   (m.month + interval '2 hours') AT TIME ZONE a.tz,
                   (m.month + interval '2 hours') AT TIME ZONE a.tz
            FROM gen_accounts a JOIN gen_pricing pr USING (currency)
            CROSS JOIN LATERAL generate_series(date_trunc('month', {self.start_ts} - interval '1 month')::timestamp,
                {self.end_ts}::timestamp, interval '1 month') WITH ORDINALITY AS m(month, i)
            WHERE (m.month + interval '2 hours') AT TIME ZONE a.tz >= {self.start_ts}
              AND (m.month + interval '2 hours') AT TIME ZONE a.tz < {self.end_ts}"""))
        adjustment_key = "a.account_no * 100000 + d"
        c.execute(insert.format(f"""
            SELECT 'adjustment', {adjustment_key}, a.account_no, a.currency,
                   (CASE WHEN {u('adjustment_amount', adjustment_key)} < 0.5 THEN -1 ELSE 1 END)
                   * (pr.min_amount * 10 + floor({u('adjustment_amount', adjustment_key)}
                      * pr.median_amount * 2))::bigint,
                   0, 'adjustment', 'other_adjustment', NULL, 'Manual balance correction',
                   {self.start_ts} + d * interval '1 day' + interval '15 hours',
                   {self.start_ts} + d * interval '1 day' + interval '15 hours'
            FROM gen_accounts a JOIN gen_pricing pr USING (currency)
            CROSS JOIN generate_series(0, {self.days - 1}) d
            WHERE {u('adjustment', adjustment_key)} < 0.025"""))

    def payouts(self) -> None:
        c = self.conn
        slots = c.execute(f"""
            SELECT b.account_no, b.currency, cal.payout_day, sum(b.amount - b.fee)
            FROM gen_bt b
            JOIN gen_calendar cal ON cal.account_no = b.account_no AND cal.local_day = b.sweep_day
            JOIN gen_accounts a ON a.account_no = b.account_no
            WHERE cal.payout_day::timestamp AT TIME ZONE a.tz < {self.end_ts}
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""").fetchall()
        planned = plan_payouts(PayoutSlot(*row) for row in slots)
        planned.sort(key=lambda p: (p.payout_day, p.account_no, p.currency))
        newest = {}
        for number, payout in enumerate(planned, start=1):
            newest[(payout.account_no, payout.currency)] = number
        c.execute("CREATE TEMP TABLE gen_payout_plan (payout_no bigint PRIMARY KEY, account_no int,"
                  " currency text, payout_day date, amount bigint, is_newest boolean) ON COMMIT DROP")
        self._copy("gen_payout_plan", "payout_no, account_no, currency, payout_day, amount, is_newest",
                   [(no, p.account_no, p.currency, p.payout_day, p.amount,
                     newest[(p.account_no, p.currency)] == no)
                    for no, p in enumerate(planned, start=1)])
        c.execute("CREATE TEMP TABLE gen_payout_sweep (account_no int, currency text, payout_day date,"
                  " payout_no bigint, PRIMARY KEY (account_no, currency, payout_day)) ON COMMIT DROP")
        self._copy("gen_payout_sweep", "account_no, currency, payout_day, payout_no",
                   [(p.account_no, p.currency, day, no)
                    for no, p in enumerate(planned, start=1) for day in p.settles_days])
        s, end = self.seed, self.end_ts
        c.execute(f"""
            INSERT INTO payouts (id, account_id, amount, currency, status, automatic, type, method,
                                 description, destination_id, arrival_date, created_at, updated_at)
            SELECT {id_sql('po_', s, 'payout_id', 'payout_no')},
                   {id_sql('acct_', s, 'account_id', 'p.account_no')}, amount, p.currency,
                   st.status, true, 'bank_account', 'standard', 'STRIPE PAYOUT',
                   {id_sql('ba_', s, 'bank', 'p.account_no')}, arrival_date, created_at,
                   CASE st.status WHEN 'paid' THEN greatest(created_at, arrival_date::timestamp AT TIME ZONE a.tz)
                        WHEN 'in_transit' THEN least(created_at + interval '1 hour', {end})
                        ELSE created_at END
            FROM gen_payout_plan p JOIN gen_accounts a USING (account_no)
            CROSS JOIN LATERAL (SELECT p.payout_day::timestamp AT TIME ZONE a.tz AS created_at,
                                       p.payout_day + 2 AS arrival_date) t
            CROSS JOIN LATERAL (SELECT CASE WHEN t.arrival_date < {end}::date THEN 'paid'
                                            WHEN p.is_newest THEN 'pending'
                                            ELSE 'in_transit' END AS status) st
            ORDER BY payout_no""")

    def balance_transactions(self) -> None:
        s, end = self.seed, self.end_ts
        kind_no = "CASE b.kind " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in _TXN_KIND.items()) + " END"
        self.conn.execute(f"""
            INSERT INTO balance_transactions (id, account_id, amount, fee, net, currency, type,
                reporting_category, source_id, description, status, payout_id, available_on,
                created_at, updated_at)
            SELECT {id_sql('txn_', s, 'txn_id', f'(({kind_no})::bigint << 36) | b.seq')},
                   {id_sql('acct_', s, 'account_id', 'b.account_no')},
                   b.amount, b.fee, b.amount - b.fee, b.currency, b.type, b.category, b.source_id,
                   b.description,
                   CASE WHEN b.available_on <= {end} THEN 'available' ELSE 'pending' END,
                   po.id, b.available_on, b.created_at,
                   -- the last change: settled by a payout, or became available
                   CASE WHEN po.id IS NOT NULL THEN po.created_at
                        WHEN b.available_on <= {end} THEN b.available_on
                        ELSE b.created_at END
            FROM gen_bt b
            LEFT JOIN gen_calendar cal ON cal.account_no = b.account_no AND cal.local_day = b.sweep_day
            LEFT JOIN gen_payout_sweep sw ON sw.account_no = b.account_no
                 AND sw.currency = b.currency AND sw.payout_day = cal.payout_day
            LEFT JOIN payouts po ON po.id = {id_sql('po_', s, 'payout_id', 'sw.payout_no')}""")
        self.conn.execute(f"""
            INSERT INTO balance_transactions (id, account_id, amount, fee, net, currency, type,
                reporting_category, source_id, description, status, payout_id, available_on,
                created_at, updated_at)
            SELECT {txn_id_sql(s, 'payout', 'p.payout_no')}, po.account_id, -po.amount, 0,
                   -po.amount, po.currency, 'payout', 'payout', po.id, po.description,
                   'available', NULL, po.created_at, po.created_at, po.created_at
            FROM gen_payout_plan p
            JOIN payouts po ON po.id = {id_sql('po_', s, 'payout_id', 'p.payout_no')}
            ORDER BY p.payout_no""")

    def payout_reversals(self) -> None:
        """Reverse a share of the paid payouts the day after they arrived (10:00 local): the
        payout keeps its status (Stripe's original payout stays paid) and gets reversed_at; a
        payout_reversal transaction (+amount, available at once) returns the money, and the
        first payout created after it settles it, growing by the reversed amount."""
        c, s, end = self.conn, self.seed, self.end_ts
        c.execute(f"""
            CREATE TEMP TABLE gen_reversals ON COMMIT DROP AS
            SELECT p.payout_no, po.id AS payout_id, po.account_id, po.currency, po.amount,
                   po.description, rev.reversed_at, nxt.payout_id AS next_payout_id,
                   nxt.created_at AS next_created_at
            FROM (SELECT * FROM gen_payout_plan
                  WHERE {self.u('payout_reversal', 'payout_no')} < {PAYOUT_REVERSAL_SHARE}) p
            JOIN gen_accounts a USING (account_no)
            JOIN payouts po ON po.id = {id_sql('po_', s, 'payout_id', 'p.payout_no')}
            CROSS JOIN LATERAL (SELECT (po.arrival_date + 1)::timestamp AT TIME ZONE a.tz
                                       + interval '10 hours' AS reversed_at) rev
            CROSS JOIN LATERAL (
                SELECT n.id AS payout_id, n.created_at FROM payouts n
                WHERE n.account_id = po.account_id AND n.currency = po.currency
                  AND n.created_at >= rev.reversed_at
                ORDER BY n.created_at LIMIT 1) nxt
            WHERE po.status = 'paid' AND rev.reversed_at < {end}""")
        # A payout that sweeps a reversal back is not reversed itself: its reversal would have
        # to return the grown amount (a chain), which the single pass below does not compute.
        c.execute("DELETE FROM gen_reversals WHERE payout_id IN"
                  " (SELECT next_payout_id FROM gen_reversals)")
        c.execute(f"""
            INSERT INTO balance_transactions (id, account_id, amount, fee, net, currency, type,
                reporting_category, source_id, description, status, payout_id, available_on,
                created_at, updated_at)
            SELECT {txn_id_sql(s, 'payout_reversal', 'r.payout_no')}, r.account_id, r.amount, 0,
                   r.amount, r.currency, 'payout_reversal', 'payout_reversal', r.payout_id,
                   'PAYOUT REVERSAL ' || r.description, 'available', r.next_payout_id,
                   r.reversed_at, r.reversed_at, r.next_created_at
            FROM gen_reversals r ORDER BY r.payout_no""")
        c.execute("""
            UPDATE payouts po SET reversed_at = r.reversed_at,
                                  updated_at = greatest(po.updated_at, r.reversed_at)
            FROM gen_reversals r WHERE po.id = r.payout_id""")
        c.execute("""
            CREATE TEMP TABLE gen_reversal_sweeps ON COMMIT DROP AS
            SELECT next_payout_id AS payout_id, sum(amount) AS swept
            FROM gen_reversals GROUP BY next_payout_id""")
        c.execute("""
            UPDATE payouts po SET amount = po.amount + w.swept
            FROM gen_reversal_sweeps w WHERE po.id = w.payout_id""")
        c.execute("""
            UPDATE balance_transactions bt SET amount = bt.amount - w.swept, net = bt.net - w.swept
            FROM gen_reversal_sweeps w
            WHERE bt.source_id = w.payout_id AND bt.type = 'payout'""")
