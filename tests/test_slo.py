"""SLO burn-rate alerts (drills.engine.slo): generated rules checked and unit-tested by promtool itself, and
the rule's own floor (the fastest TTD it can reach) against the seed's MTTD."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.adapters.files.impact import load_slo, slo_paths
from drills.adapters.store.paths import repo_root
from drills.engine.slo import alert_name, generate_rules, prom_duration, rule_floor
from drills.errors import ScenarioError
from drills.model.slo import Slo

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool comes with Debian's prometheus package"
)
APP_SLO = repo_root() / "fixtures" / "slo" / "app.yaml"


@pytest.fixture(scope="module")
def slo() -> Slo:
    return load_slo(APP_SLO)


def _write_rules(tmp_path: Path, slo: Slo) -> tuple[Path, dict[str, Any]]:
    rules = generate_rules(slo)
    path = tmp_path / "slo-rules.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path, rules


def _alert(rules: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == name)


def _promtool_test(
    tmp_path: Path, rules_file: Path, tests: list[dict[str, Any]], interval: str = "2s"
) -> None:
    assert PROMTOOL is not None
    spec = {"rule_files": [rules_file.name], "evaluation_interval": interval, "tests": tests}
    test_file = tmp_path / "slo-rules.test.yaml"
    test_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    done = subprocess.run(
        [PROMTOOL, "test", "rules", test_file.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _counter(per_step: float, steps: int, start: float = 0.0) -> str:
    return f"{start:g}+{per_step:g}x{steps}"


def _expected(rules: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rule = _alert(rules, name)
    return [
        {"exp_labels": {**rule["labels"], "alertname": name} | {}, "exp_annotations": rule["annotations"]}
    ]


def test_every_shipped_slo_file_loads_and_generates_valid_rules(tmp_path: Path) -> None:
    paths = slo_paths()
    assert paths, "the runbook world ships SLO files"
    for path in paths:
        slo = load_slo(path)
        rules = generate_rules(slo)
        names = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
        assert alert_name(slo, "availability", "page") in names
        assert alert_name(slo, "availability", "ticket") in names


@needs_promtool
@pytest.mark.monitoring
def test_promtool_accepts_every_generated_rule(tmp_path: Path, slo: Slo) -> None:
    rules_file, _ = _write_rules(tmp_path, slo)
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _outage_series(
    healthy_steps: int, bad_steps: int, rps: float, error_ratio: float, step_s: float
) -> list[dict[str, str]]:
    good = rps * step_s * (1 - error_ratio)
    bad = rps * step_s * error_ratio
    ok_values = f"{_counter(rps * step_s, healthy_steps)} {_counter(good, bad_steps, rps * step_s * (healthy_steps + 1))}"
    err_values = f"0x{healthy_steps} {_counter(bad, bad_steps)}"
    return [
        {"series": 'http_requests_total{service="app",route="checkout",code="200"}', "values": ok_values},
        {"series": 'http_requests_total{service="app",route="checkout",code="503"}', "values": err_values},
    ]


@needs_promtool
@pytest.mark.monitoring
def test_the_page_alert_fires_within_its_floor_of_a_full_outage_and_not_before(
    tmp_path: Path, slo: Slo
) -> None:
    rules_file, rules = _write_rules(tmp_path, slo)
    name = alert_name(slo, "availability", "page")
    floor = rule_floor(slo, "availability", "page", 1.0)
    assert floor.drill_seconds is not None and floor.drill_seconds < 10
    t0 = 120  # healthy for longer than the 60 s long window first
    _promtool_test(
        tmp_path,
        rules_file,
        [
            {
                "interval": "2s",
                "input_series": _outage_series(t0 // 2, 60, rps=1000, error_ratio=1.0, step_s=2),
                "alert_rule_test": [
                    {"eval_time": f"{t0 - 2}s", "alertname": name, "exp_alerts": []},
                    {
                        "eval_time": f"{t0 + round(floor.drill_seconds) + 2}s",
                        "alertname": name,
                        "exp_alerts": _expected(rules, name),
                    },
                ],
            }
        ],
    )


@needs_promtool
@pytest.mark.monitoring
def test_a_small_error_rate_opens_a_ticket_near_its_floor_and_never_pages(tmp_path: Path, slo: Slo) -> None:
    rules_file, rules = _write_rules(tmp_path, slo)
    page, ticket = alert_name(slo, "availability", "page"), alert_name(slo, "availability", "ticket")
    floor = rule_floor(slo, "availability", "ticket", 0.005)
    assert floor.drill_seconds is not None
    step = 10
    healthy = 4400 // step  # longer than the ticket's 72-minute long window (3 d / 60)
    t0 = healthy * step
    bad_steps = (round(floor.drill_seconds) + 300) // step
    _promtool_test(
        tmp_path,
        rules_file,
        [
            {
                "interval": f"{step}s",
                "input_series": _outage_series(healthy, bad_steps, rps=1000, error_ratio=0.005, step_s=step),
                "alert_rule_test": [
                    {
                        "eval_time": f"{t0 + round(floor.drill_seconds * 0.85)}s",
                        "alertname": ticket,
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": f"{t0 + round(floor.drill_seconds * 1.15)}s",
                        "alertname": ticket,
                        "exp_alerts": _expected(rules, ticket),
                    },
                    {
                        "eval_time": f"{t0 + round(floor.drill_seconds * 1.15)}s",
                        "alertname": page,
                        "exp_alerts": [],
                    },
                ],
            }
        ],
        interval="10s",
    )


@needs_promtool
@pytest.mark.monitoring
def test_the_latency_page_fires_when_requests_get_slower_than_the_threshold(tmp_path: Path, slo: Slo) -> None:
    rules_file, rules = _write_rules(tmp_path, slo)
    name = alert_name(slo, "latency", "page")
    le = f"{slo.latency.threshold.total_seconds():g}" if slo.latency else "0.5"
    floor = rule_floor(slo, "latency", "page", 0.3)
    assert floor.drill_seconds is not None
    t0 = 120
    # before T0 every request is under the threshold; after it, 30 % are slower
    total = f"{_counter(2000, t0 // 2)} {_counter(2000, 60, 2000 * (t0 // 2 + 1))}"
    fast = f"{_counter(2000, t0 // 2)} {_counter(1400, 60, 2000 * (t0 // 2 + 1))}"
    _promtool_test(
        tmp_path,
        rules_file,
        [
            {
                "interval": "2s",
                "input_series": [
                    {
                        "series": f'http_request_duration_seconds_bucket{{service="app",route="browse",le="{le}"}}',
                        "values": fast,
                    },
                    {
                        "series": 'http_request_duration_seconds_count{service="app",route="browse"}',
                        "values": total,
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": f"{t0 + round(floor.drill_seconds * 0.8)}s",
                        "alertname": name,
                        "exp_alerts": [],
                    },
                    {
                        "eval_time": f"{t0 + round(floor.drill_seconds) + 4}s",
                        "alertname": name,
                        "exp_alerts": _expected(rules, name),
                    },
                ],
            }
        ],
    )


def test_a_rule_too_slow_for_the_seeds_mttd_is_reported(slo: Slo) -> None:
    # 2 % errors burns the budget at 20x: the 1 h window needs 0.0144 x 3600 / 0.02 s = 43 min in production
    slow = rule_floor(slo, "availability", "page", 0.02)
    assert slow.production_seconds is not None and slow.production_seconds > 40 * 60
    assert not slow.meets_mttd
    assert "cannot meet the seed's MTTD < 5 min" in slow.describe()
    fast = rule_floor(slo, "availability", "page", 1.0)
    assert fast.meets_mttd
    never = rule_floor(slo, "availability", "page", 0.001)
    assert never.drill_seconds is None and not never.meets_mttd
    assert "never fires" in never.describe()


def test_windows_are_scaled_by_the_time_scale(slo: Slo) -> None:
    rules = generate_rules(slo)
    records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    # 1 h, 5 m, 6 h, 30 m, 3 d, 6 h divided by 60
    assert {
        "slo:sli_error:ratio_rate1m",
        "slo:sli_error:ratio_rate5s",
        "slo:sli_error:ratio_rate6m",
        "slo:sli_error:ratio_rate30s",
        "slo:sli_error:ratio_rate1h12m",
    } <= records
    assert prom_duration(timedelta(hours=1) / 12) == "5m"


def test_a_bad_slo_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "app.yaml"
    bad.write_text("service: app\navailability_pct: 100\n")
    with pytest.raises(ScenarioError, match=r"app.yaml:2: availability_pct"):
        load_slo(bad)
