"""The monthly chaos test picker: reproducible from its seed, never in a blackout, never twice in a row."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drills.adapters.files.scenarios import load_model, load_scenarios
from drills.engine.schedule import (
    Interval,
    blackout_hit,
    candidate_days,
    choose_scenario,
    clearance,
    is_due,
    month_of,
    monthly_slot,
    next_month,
    parse_month,
    pick_monthly,
)
from drills.errors import ScenarioError, UsageError
from drills.model.scenario import Difficulty, Scenario
from drills.model.schedule import DateBlackout, MonthlySchedule, Weekday, WeeklyBlackout
from drills.timing import FakeClock

ROOT = Path(__file__).resolve().parents[1]
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def shipped() -> list[Scenario]:
    loaded, problems = load_scenarios([ROOT / "scenarios"])
    assert not problems, problems
    return [s for _, s in loaded]


def schedule(**kw: object) -> MonthlySchedule:
    return MonthlySchedule.model_validate(kw)


# ---- days ----------------------------------------------------------------------------------------


def test_default_is_the_seeds_first_tuesday_at_ten(shipped: list[Scenario]) -> None:
    s = schedule()
    assert s.weekday == Weekday.TUESDAY and s.at == time(10, 0)
    for year, month, first_tuesday in [(2026, 1, 6), (2026, 2, 3), (2026, 9, 1), (2026, 12, 1), (2027, 6, 1)]:
        slot = monthly_slot(year, month, s, UTC, clearance(s, shipped))
        assert slot.at == datetime(year, month, first_tuesday, 10, 0, tzinfo=UTC)
        assert slot.skipped == ()


def test_week_and_weekday_are_configurable() -> None:
    s = schedule(weekday="thu", week="last")
    assert candidate_days(2026, 4, s) == [date(2026, 4, 30)]
    s = schedule(weekday="monday", week="second")
    assert candidate_days(2026, 6, s)[0] == date(2026, 6, 8)


def test_slot_is_local_time_in_the_schedules_zone() -> None:
    s = schedule(timezone="Europe/Paris", at="10:00")
    summer = monthly_slot(2026, 7, s, PARIS, timedelta(minutes=30)).at
    winter = monthly_slot(2026, 1, s, PARIS, timedelta(minutes=30)).at
    assert summer is not None and winter is not None
    assert summer.astimezone(UTC).hour == 8  # CEST, UTC+2
    assert winter.astimezone(UTC).hour == 9  # CET, UTC+1


def test_unquoted_yaml_time_is_read_as_meant(tmp_path: Path) -> None:
    f = tmp_path / "schedule.yaml"
    f.write_text("at: 10:30\nweekday: tue\n")  # YAML 1.1: 10:30 is the integer 630
    assert load_model(f, MonthlySchedule).at == time(10, 30)


def test_bad_schedule_file_names_file_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "schedule.yaml"
    f.write_text(
        "weekday: tuesday\nblackouts:\n  - kind: weekly\n    days: [fryday]\n"
        "    from: '12:00'\n    to: '18:00'\n"
    )
    with pytest.raises(ScenarioError) as e:
        load_model(f, MonthlySchedule)
    text = str(e.value)
    assert f"{f}:4: blackouts[0].days" in text and "fryday" in text and "not a weekday" in text


# ---- blackouts -----------------------------------------------------------------------------------


def test_a_blacked_out_first_tuesday_moves_to_the_next_clear_tuesday() -> None:
    s = schedule(
        blackouts=[{"kind": "dates", "from": "2026-01-01", "to": "2026-01-07", "reason": "new-year freeze"}]
    )
    slot = monthly_slot(2026, 1, s, UTC, timedelta(minutes=30))
    assert slot.at == datetime(2026, 1, 13, 10, 0, tzinfo=UTC)
    assert slot.skipped == ((date(2026, 1, 6), "blackout 2026-01-01..2026-01-07 (new-year freeze)"),)


def test_the_whole_test_window_must_clear_not_just_its_start() -> None:
    # Starts at 10:00, lasts 45 minutes: a blackout from 10:30 catches it.
    s = schedule(blackouts=[{"kind": "weekly", "days": ["tue"], "from": "10:30", "to": "11:00"}])
    assert monthly_slot(2026, 3, s, UTC, timedelta(minutes=45)).at is None
    assert monthly_slot(2026, 3, s, UTC, timedelta(minutes=30)).at == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def test_a_weekly_window_crossing_midnight() -> None:
    b = WeeklyBlackout.model_validate({"kind": "weekly", "days": ["mon"], "from": "22:00", "to": "06:00"})
    mon_late = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    tue_early = datetime(2026, 3, 3, 5, 0, tzinfo=UTC)
    tue_ten = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    assert blackout_hit(Interval(mon_late, mon_late + timedelta(minutes=5)), [b], UTC) is b
    assert blackout_hit(Interval(tue_early, tue_early + timedelta(minutes=5)), [b], UTC) is b
    assert blackout_hit(Interval(tue_ten, tue_ten + timedelta(hours=1)), [b], UTC) is None


def test_every_day_blacked_out_is_an_error_that_says_so(shipped: list[Scenario]) -> None:
    s = schedule(
        blackouts=[{"kind": "dates", "from": "2026-05-01", "to": "2026-05-31", "reason": "migration"}]
    )
    with pytest.raises(UsageError) as e:
        pick_monthly(shipped, s, year=2026, month=5, seed=1, tz=UTC)
    assert "2026-05" in e.value.message and "migration" in e.value.message
    assert "skipped this month" in (e.value.hint or "")


def test_date_blackout_needs_ordered_dates() -> None:
    with pytest.raises(ValueError, match="before from"):
        DateBlackout.model_validate({"kind": "dates", "from": "2026-05-10", "to": "2026-05-01"})


# ---- the scenario --------------------------------------------------------------------------------


def test_same_seed_same_pick(shipped: list[Scenario]) -> None:
    s = schedule()
    a = pick_monthly(shipped, s, year=2026, month=3, seed=4242, tz=UTC, last_scenario="bad-deploy-rollback")
    b = pick_monthly(
        list(reversed(shipped)), s, year=2026, month=3, seed=4242, tz=UTC, last_scenario="bad-deploy-rollback"
    )
    assert a == b
    assert a.as_dict()["replay"] == (
        "drill schedule pick --month 2026-03 --seed 4242 --last bad-deploy-rollback"
    )


def test_different_seeds_spread_over_the_eligible_scenarios(shipped: list[Scenario]) -> None:
    s = schedule()
    picks = {choose_scenario(shipped, s, seed=n, last_scenario=None).scenario_id for n in range(300)}
    # Uniform over 16 scenarios: 300 draws miss one with probability ~16 * (15/16)^300, about 6e-8.
    assert picks == {x.id for x in shipped}


def test_filters_by_tags_and_difficulty_and_explains_what_it_left_out(shipped: list[Scenario]) -> None:
    s = schedule(tags=["chaos-test"], difficulty=["beginner"])
    c = choose_scenario(shipped, s, seed=7, last_scenario=None)
    assert set(c.eligible) == {"chaostoolkit-terminate-pod", "pod-kill-self-healing"}
    why = dict(c.excluded)
    assert why["bad-deploy-rollback"] == "lacks tag chaos-test"
    s = schedule(exclude_tags=["dr"], difficulty=["beginner", "intermediate"])
    why = dict(choose_scenario(shipped, s, seed=7, last_scenario=None).excluded)
    assert why["quarterly-dr-namespace-lost"] == "has excluded tag dr"
    assert why["node-lost-drain"] == "difficulty advanced not allowed"


def test_never_last_months_scenario_even_when_only_two_qualify(shipped: list[Scenario]) -> None:
    s = schedule(tags=["chaos-test"])
    for seed in range(50):
        c = choose_scenario(shipped, s, seed=seed, last_scenario="pod-kill-self-healing")
        assert c.scenario_id == "chaostoolkit-terminate-pod"


def test_the_only_candidate_ran_last_month_is_an_error(shipped: list[Scenario]) -> None:
    s = schedule(scenarios=["pod-kill-self-healing"])
    with pytest.raises(UsageError) as e:
        choose_scenario(shipped, s, seed=1, last_scenario="pod-kill-self-healing")
    assert "ran last month" in e.value.message


def test_clearance_is_the_longest_budget_so_the_day_does_not_depend_on_the_pick(
    shipped: list[Scenario],
) -> None:
    assert clearance(schedule(), shipped) == timedelta(minutes=45)  # the DR scenario's budget
    assert clearance(schedule(duration="20m"), shipped) == timedelta(minutes=20)


# ---- properties ----------------------------------------------------------------------------------

weekly = st.builds(
    lambda days, h1, m1, h2, m2: {
        "kind": "weekly",
        "days": days,
        "from": f"{h1:02d}:{m1:02d}",
        "to": f"{h2:02d}:{m2:02d}",
    },
    st.lists(
        st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    st.integers(0, 23),
    st.sampled_from([0, 15, 30, 45]),
    st.integers(0, 23),
    st.sampled_from([5, 20, 40]),
)
dates = st.builds(
    lambda start, length: {
        "kind": "dates",
        "from": start.isoformat(),
        "to": (start + timedelta(days=length)).isoformat(),
    },
    st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)),
    st.integers(0, 10),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**63),
    blackouts=st.lists(st.one_of(weekly, dates), max_size=4),
    tz_name=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
    at=st.sampled_from(["09:00", "10:00", "14:30", "23:45"]),
    start_month=st.integers(1, 12),
)
def test_a_year_of_picks_is_reproducible_clear_and_never_repeats(
    shipped: list[Scenario],
    seed: int,
    blackouts: list[dict[str, object]],
    tz_name: str,
    at: str,
    start_month: int,
) -> None:
    s = schedule(timezone=tz_name, at=at, blackouts=blackouts, tags=["chaos-test"])
    tz = ZoneInfo(tz_name)
    ym = (2026, start_month)
    last: str | None = None
    for i in range(12):
        try:
            pick = pick_monthly(shipped, s, year=ym[0], month=ym[1], seed=seed + i, tz=tz, last_scenario=last)
        except UsageError as e:
            # Only acceptable reason: the whole month is blacked out; then nothing runs that month.
            assert "clears the blackouts" in e.message
            slot = monthly_slot(ym[0], ym[1], s, tz, clearance(s, shipped))
            assert slot.at is None
            ym = next_month(*ym)
            continue
        window = Interval(pick.at, pick.at + pick.duration)
        assert blackout_hit(window, s.blackouts, tz) is None
        assert pick.scenario_id != last
        assert month_of(pick.at, tz) == ym
        assert pick.at.astimezone(tz).isoweekday() == Weekday.TUESDAY
        again = pick_monthly(shipped, s, year=ym[0], month=ym[1], seed=seed + i, tz=tz, last_scenario=last)
        assert again == pick
        last = pick.scenario_id
        ym = next_month(*ym)


# ---- at run time, on a fake clock ----------------------------------------------------------------


def test_cron_firings_on_a_fake_clock_run_once_a_month_from_the_slot_on(shipped: list[Scenario]) -> None:
    """Fire like cron (every Tuesday 10:00 Paris) for a year; count the tests that would run."""
    s = schedule(
        timezone="Europe/Paris",
        blackouts=[
            {"kind": "dates", "from": "2026-08-01", "to": "2026-08-31", "reason": "summer freeze"},
            {"kind": "dates", "from": "2026-03-03", "to": "2026-03-03", "reason": "board meeting"},
        ],
    )
    duration = clearance(s, shipped)
    clock = FakeClock(datetime(2026, 1, 6, 9, 0, tzinfo=UTC))  # the first Tuesday, 10:00 in Paris
    ran: dict[str, datetime] = {}
    last: str | None = None
    history: list[str] = []
    while clock.now() < datetime(2027, 1, 1, tzinfo=UTC):
        now = clock.now()
        y, m = month_of(now, PARIS)
        slot = monthly_slot(y, m, s, PARIS, duration)
        key = f"{y:04d}-{m:02d}"
        if slot.at is not None:
            due, _why = is_due(now, slot.at, s, PARIS, duration, already_ran=key in ran)
            if due:
                pick = pick_monthly(shipped, s, year=y, month=m, seed=len(ran), tz=PARIS, last_scenario=last)
                assert pick.at <= now
                ran[key] = now
                history.append(pick.scenario_id)
                last = pick.scenario_id
        clock.advance(timedelta(days=7))
    assert "2026-08" not in ran  # the freeze covers every Tuesday
    assert ran["2026-03"].astimezone(PARIS).date() == date(2026, 3, 10)  # moved past the board meeting
    assert len(ran) == 11
    assert all(a != b for a, b in itertools.pairwise(history))


def test_a_missed_slot_catches_up_later_that_month_but_not_into_a_blackout() -> None:
    s = schedule(blackouts=[{"kind": "weekly", "days": ["wed"], "from": "00:00", "to": "00:00"}])
    slot = datetime(2026, 4, 7, 10, 0, tzinfo=UTC)
    d = timedelta(minutes=30)
    assert is_due(slot - timedelta(minutes=1), slot, s, UTC, d, already_ran=False)[0] is False
    assert is_due(slot + timedelta(days=6), slot, s, UTC, d, already_ran=False) == (True, "due")
    wednesday = datetime(2026, 4, 8, 12, 0, tzinfo=UTC)
    due, why = is_due(wednesday, slot, s, UTC, d, already_ran=False)
    assert not due and "blackout" in why
    assert is_due(slot + timedelta(days=1), slot, s, UTC, d, already_ran=True)[0] is False
    assert is_due(datetime(2026, 5, 1, tzinfo=UTC), slot, s, UTC, d, already_ran=False)[0] is False


def test_parse_month() -> None:
    assert parse_month("2026-02") == (2026, 2)
    for bad in ("2026-13", "26-02", "feb", "2026/02"):
        with pytest.raises(UsageError):
            parse_month(bad)


def test_difficulty_enum_covers_the_scenarios() -> None:
    assert schedule().difficulty == list(Difficulty)


# ---- the monthly test at run time: history, log, replay ------------------------------------------


def test_a_year_of_cron_ticks_records_every_pick_and_replays_from_the_log(
    shipped: list[Scenario], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from drills.adapters.store.history import History
    from drills.runner.monthly import MONTHLY_LOG, monthly_tick

    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    s = load_model(ROOT / "scenarios" / "schedules" / "monthly.yaml", MonthlySchedule)
    clock = FakeClock(datetime(2026, 1, 6, 9, 0, tzinfo=UTC))
    ran: list[tuple[str, str]] = []

    def run(scenario: Scenario, pick: object) -> tuple[str, bool]:
        drill_id = f"monthly-{len(ran)}"
        ran.append((drill_id, scenario.id))
        return drill_id, True

    with History(tmp_path / "state" / "history.sqlite3", clock=clock) as h:
        while clock.now() < datetime(2027, 1, 1, tzinfo=UTC):
            monthly_tick(s, shipped, history=h, run=run, clock=clock)
            clock.advance(timedelta(hours=1))
        picks = h.picks()
    # Every month ran exactly once (December's first Tuesday comes before the year-end freeze).
    assert [p["month"] for p in picks] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert all(p["status"] == "ran" for p in picks)
    scenarios = [p["scenario"] for p in picks]
    assert all(a != b for a, b in itertools.pairwise(scenarios))
    assert "quarterly-dr-namespace-lost" not in scenarios  # excluded by tag
    for p in picks:
        at = datetime.fromisoformat(p["slot"])
        assert (at.isoweekday() == Weekday.TUESDAY and at.day <= 7) or p["detail"]["skipped_days"]
    # The log keeps each seed; replaying it picks the same scenario.
    lines = [json.loads(x) for x in (tmp_path / "state" / MONTHLY_LOG).read_text().splitlines()]
    ran_lines = [x for x in lines if x["event"] == "ran"]
    assert len(ran_lines) == len(picks)
    for line in ran_lines:
        y, m = parse_month(line["month"])
        again = pick_monthly(
            shipped, s, year=y, month=m, seed=line["seed"], tz=UTC, last_scenario=line["last_scenario"]
        )
        assert again.scenario_id == line["scenario"]


# ---- installing: cron and CronJob ---------------------------------------------------------------


def test_cron_block_fires_on_the_weekday_or_hourly_when_zones_differ(tmp_path: Path) -> None:
    from drills.adapters.schedule_install import BEGIN, END, render_cron

    cfg = tmp_path / "monthly.yaml"
    exact = render_cron(schedule(at="09:30"), cfg, machine_tz="Etc/UTC", log=tmp_path / "m.log")
    lines = exact.splitlines()
    assert lines[0].startswith(BEGIN) and lines[-1] == END
    (entry,) = [x for x in lines if not x.startswith("#")]
    assert entry.startswith("30 9 * * 2 ")
    assert f"schedule run --config {cfg}" in entry and entry.endswith(f">> {tmp_path / 'm.log'} 2>&1")
    other = render_cron(schedule(timezone="Europe/Paris"), cfg, machine_tz="Etc/UTC")
    (entry,) = [x for x in other.splitlines() if not x.startswith("#")]
    assert entry.startswith("0 * * * * ") and "hourly" in other


def test_cron_percent_signs_are_escaped(tmp_path: Path) -> None:
    from drills.adapters.schedule_install import render_cron

    odd = tmp_path / "100%"
    odd.mkdir()
    block = render_cron(schedule(), odd / "s.yaml", machine_tz="UTC")
    assert "100\\%" in block and "100%/" not in block.replace("100\\%", "")


CRONTAB = shutil.which("crontab")


@pytest.mark.skipif(CRONTAB is None, reason="no crontab program (Debian package cron)")
def test_install_into_the_real_crontab_keeps_other_lines_and_replaces_our_block(tmp_path: Path) -> None:
    from drills.adapters.schedule_install import BEGIN, install_cron, render_cron

    assert CRONTAB is not None
    before = subprocess.run([CRONTAB, "-l"], capture_output=True, text=True, check=False)
    saved = before.stdout if before.returncode == 0 else None
    try:
        subprocess.run([CRONTAB, "-"], input="# someone else's job\n5 4 * * * true\n", text=True, check=True)
        block1 = render_cron(schedule(at="10:00"), tmp_path / "a.yaml", machine_tz="UTC")
        assert install_cron(block1).method == "crontab"
        block2 = render_cron(schedule(at="11:15"), tmp_path / "a.yaml", machine_tz="UTC")
        install_cron(block2)
        now = subprocess.run([CRONTAB, "-l"], capture_output=True, text=True, check=True).stdout
        assert now.count(BEGIN) == 1
        assert "15 11 * * 2 " in now and "0 10 * * 2 " not in now
        assert "5 4 * * * true" in now and "# someone else's job" in now
    finally:
        if saved is None:
            subprocess.run([CRONTAB, "-r"], capture_output=True, check=False)
        else:
            subprocess.run([CRONTAB, "-"], input=saved, text=True, check=True)


def test_without_crontab_the_entry_goes_to_a_file_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drills.adapters.schedule_install import CRON_FILE, install_cron

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    done = install_cron("# block\n", fallback_dir=tmp_path / "cron")
    assert done.method == "file" and done.path == tmp_path / "cron" / CRON_FILE
    assert done.path.read_text() == "# block\n"
    assert "no `crontab` program" in done.message and f"crontab {done.path}" in done.message


def test_cronjob_manifest_is_three_valid_objects() -> None:
    import yaml

    from drills.adapters.schedule_install import CRONJOB_NAME, render_cronjob

    s = schedule(timezone="Europe/Paris", at="10:00")
    docs = list(yaml.safe_load_all(render_cronjob(s, "timezone: Europe/Paris\n", namespace="drills-ops")))
    assert [d["kind"] for d in docs] == ["ConfigMap", "PersistentVolumeClaim", "CronJob"]
    cj = docs[2]
    assert cj["metadata"]["name"] == CRONJOB_NAME and cj["metadata"]["namespace"] == "drills-ops"
    assert cj["spec"]["schedule"] == "0 10 * * 2" and cj["spec"]["timeZone"] == "Europe/Paris"
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    container = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["schedule", "run", "--config", "/etc/drills/schedule.yaml"]
    assert docs[0]["data"]["schedule.yaml"] == "timezone: Europe/Paris\n"


def test_cli_schedule_pick_is_reproducible_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from click.testing import CliRunner

    from drills.cli import cli

    monkeypatch.setenv("DRILLS_STATE", str(tmp_path / "state"))
    runner = CliRunner()
    args = ["schedule", "pick", "--month", "2026-04", "--seed", "77", "--json"]
    a = runner.invoke(cli, args)
    b = runner.invoke(cli, args)
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.output)["scenario"] == json.loads(b.output)["scenario"]
    h = runner.invoke(cli, ["schedule", "history", "--json"])
    assert [p["seed"] for p in json.loads(h.output)] == [77, 77]
    bad = runner.invoke(cli, ["schedule", "pick", "--month", "April"])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output and "Traceback" not in bad.output
    cron = runner.invoke(cli, ["schedule"])
    assert cron.exit_code == 0 and "schedule run --config" in cron.output
