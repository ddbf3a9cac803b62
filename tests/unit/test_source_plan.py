"""The small Python plans of the demo generator: payout carry rule, day volumes, parameters."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from exports.errors import InvalidParameter
from exports.source.generator import PayoutSlot, day_plan, generate_platform, plan_payouts
from exports.source.mutations import mutate_recent

D = date(2024, 1, 1)


def day(i: int) -> date:
    return D + timedelta(days=i)


def test_each_positive_payout_day_pays_what_became_available():
    slots = [PayoutSlot(1, "usd", day(0), 500), PayoutSlot(1, "usd", day(1), 700)]
    planned = plan_payouts(slots)
    assert [(p.payout_day, p.amount, p.settles_days) for p in planned] == [
        (day(0), 500, (day(0),)), (day(1), 700, (day(1),))]


def test_non_positive_days_carry_to_the_next_payout_and_leftovers_stay_unsettled():
    slots = [PayoutSlot(1, "usd", day(0), -300), PayoutSlot(1, "usd", day(1), 0),
             PayoutSlot(1, "usd", day(2), 1000), PayoutSlot(1, "usd", day(3), -50),
             PayoutSlot(1, "eur", day(3), 20)]
    planned = plan_payouts(slots)
    assert [(p.currency, p.payout_day, p.amount, p.settles_days) for p in planned] == [
        ("usd", day(2), 700, (day(0), day(1), day(2))),
        ("eur", day(3), 20, (day(3),)),
    ]  # usd day 3 (-50) waits: it is never paid out while the running sum is not positive


def test_carry_never_crosses_account_or_currency():
    slots = [PayoutSlot(1, "usd", day(0), -300), PayoutSlot(2, "usd", day(1), 1000)]
    assert [(p.account_no, p.amount) for p in plan_payouts(slots)] == [(2, 1000)]


def test_day_plan_counts_add_up_exactly_and_weekends_are_quieter():
    plan = day_plan(seed=3, payments=100_003, start=date(2024, 1, 1), days=28)
    assert sum(count for _, _, _, count in plan) == 100_003
    numbers = [n for _, _, first, count in plan for n in (first, first + count - 1)]
    assert numbers == sorted(numbers) and numbers[0] == 1 and numbers[-1] == 100_003
    weekend = sum(c for _, d, _, c in plan if d.weekday() >= 5) / 8
    weekday = sum(c for _, d, _, c in plan if d.weekday() < 5) / 20
    assert weekend < 0.75 * weekday
    assert day_plan(seed=3, payments=1000, start=D, days=28) == day_plan(
        seed=3, payments=1000, start=D, days=28)
    assert day_plan(seed=3, payments=1000, start=D, days=28) != day_plan(
        seed=4, payments=1000, start=D, days=28)


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"payments": 0}, "payments"), ({"payments": -5}, "payments"), ({"days": 0}, "days"),
    ({"seed": -1}, "seed"), ({"payments": "many"}, "payments"),
])
def test_bad_parameters_are_refused_naming_the_field(kwargs, param):
    with pytest.raises(InvalidParameter) as caught:
        generate_platform(**kwargs)
    assert caught.value.param == param


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"refunds": -1}, "refunds"), ({"now": datetime(2024, 1, 1)}, "now"),
])
def test_bad_mutation_parameters_are_refused_naming_the_field(kwargs, param):
    with pytest.raises(InvalidParameter) as caught:
        mutate_recent(seed=1, **kwargs)
    assert caught.value.param == param


def test_demo_accounts_default_is_the_six_and_many_keep_them_first():
    from exports.source.generator import DEMO_ACCOUNTS, demo_accounts

    assert demo_accounts() == DEMO_ACCOUNTS
    many = demo_accounts(1000)
    assert len(many) == 1000 and len({a.email for a in many}) == 1000
    assert [a.name for a in many[:6]] == [a.name for a in DEMO_ACCOUNTS]
    assert sum(a.volume_share for a in many) == pytest.approx(sum(a.volume_share for a in DEMO_ACCOUNTS))
    plan = day_plan(seed=3, payments=20_000, start=D, days=28, accounts=many)
    assert sum(count for _, _, _, count in plan) == 20_000
    assert len({account_no for account_no, _, _, _ in plan}) > 900  # nearly every account sells


@pytest.mark.parametrize("accounts", [0, -1, 1_000_001, "many", True])
def test_bad_account_counts_are_refused_naming_the_field(accounts):
    with pytest.raises(InvalidParameter) as caught:
        generate_platform(accounts=accounts)
    assert caught.value.param == "accounts"
