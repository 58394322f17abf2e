"""The monitoring files (deploy/monitoring/): the alert rules pass promtool's checks and its
unit tests (each alert fires on its symptom, and not on healthy series), the Operator copy
holds the same rules, the dashboard is valid and every query of it parses as PromQL, and
every metric and label they name is one the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import gateway.metrics
import scheduler_service
from scheduler_service import metrics as scheduler_metrics
from scheduler_service.execution import Recorded
from scheduler_service.models import FAILED, PENDING, SUCCEEDED
from scheduler_service.outbound import Outcome
from servicekit.config import REPO_ROOT
from servicekit.testing import ServiceUnderTest

MONITORING = REPO_ROOT / "deploy" / "monitoring"
RULES = MONITORING / "prometheus-rules.yaml"
OPERATOR_RULES = MONITORING / "prometheus-rule.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
OPERATIONS = REPO_ROOT / "docs" / "operations.md"

# Made by Prometheus, not by the code: the scrape's health, and the alerts' own series.
PROMETHEUS_SERIES = {
    "up": {"job", "instance"},
    "ALERTS": {"alertname", "alertstate", "severity"},
}
TARGET_LABELS = {"job", "instance"}  # added to every scraped series
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$service": ".*"}


# -- the files --------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_queries() -> list[str]:
    """Every PromQL query of the dashboard, Grafana's variables replaced by values."""
    board = dashboard()
    queries = [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]
    queries += [item["expr"] for item in board["annotations"]["list"] if "expr" in item]
    return [substitute_variables(query) for query in queries]


def substitute_variables(query: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    assert "$" not in query, f"a Grafana variable this test does not know: {query}"
    return query


# -- promtool ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is needed: `make test` installs it (apt-get install prometheus)")
    return found


def run_promtool(promtool: str, *arguments: str | Path) -> str:
    result = subprocess.run(
        [promtool, *map(str, arguments)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_the_rules_pass_promtool_check_with_their_templates(promtool: str) -> None:
    output = run_promtool(promtool, "check", "rules", RULES)
    assert f"SUCCESS: {len(alert_rules())} rules found" in output


def test_every_dashboard_query_parses_as_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression."""
    queries = dashboard_queries() + variable_queries()
    recording = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{number}", "expr": query}
                    for number, query in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(recording))
    output = run_promtool(promtool, "check", "rules", path)
    assert f"SUCCESS: {len(queries)} rules found" in output


def test_a_broken_query_is_refused_by_the_same_check(promtool: str, tmp_path: Path) -> None:
    """The check above can fail: an unbalanced query is an error."""
    path = tmp_path / "broken.yaml"
    path.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "x", "rules": [{"record": "x", "expr": "sum(rate(up[5m])"}]}]}
        )
    )
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True)
    assert result.returncode != 0


def histogram(name: str, labels: str, per_minute_at_most: dict[str, int]) -> dict[str, str]:
    """Cumulative bucket series growing by the given counts a minute, and +Inf, _count."""
    total = max(per_minute_at_most.values())
    prefix = f"{labels}," if labels else ""
    series = {
        f'{name}_bucket{{{prefix}le="{bound}"}}': f"0+{count}x40"
        for bound, count in per_minute_at_most.items()
    }
    series[f'{name}_bucket{{{prefix}le="+Inf"}}'] = f"0+{total}x40"
    series[f"{name}_count{{{labels}}}"] = f"0+{total}x40"
    return series


# Each alert's symptom as series, and what must fire at `eval_time` (healthy series beside
# it must not). Labels are the alert's own plus its severity.
ALERT_CASES: list[dict[str, Any]] = [
    {
        "alertname": "FlotillaTargetDown",
        "series": {
            'up{job="auth",instance="auth:8001"}': "1 0x5",
            'up{job="events",instance="events:8002"}': "1x5",
        },
        "eval_time": "4m",
        "fires": [{"job": "auth", "instance": "auth:8001", "severity": "critical"}],
    },
    {
        "alertname": "FlotillaServiceErrorRate",
        "series": {
            'http_requests_total{service="tickets",method="GET",route="/x",status="200"}': (
                "0+60x20"
            ),
            'http_requests_total{service="tickets",method="GET",route="/x",status="500"}': (
                "0+6x20"
            ),
            'http_requests_total{service="events",method="GET",route="/y",status="200"}': (
                "0+60x20"
            ),
            'http_requests_total{service="events",method="GET",route="/y",status="500"}': (
                "0+1x20"
            ),
        },
        "eval_time": "15m",
        "fires": [{"service": "tickets", "severity": "critical"}],
    },
    {
        "alertname": "FlotillaServiceLatencyHigh",
        "series": {
            **histogram(
                "http_request_duration_seconds",
                'service="media",method="GET",route="/m"',
                {"0.5": 10, "1": 10, "2.5": 60},
            ),
            **histogram(
                "http_request_duration_seconds",
                'service="auth",method="GET",route="/a"',
                {"0.5": 60, "1": 60, "2.5": 60},
            ),
        },
        "eval_time": "20m",
        "fires": [{"service": "media", "severity": "warning"}],
    },
    {
        "alertname": "FlotillaGatewayErrorRate",
        "series": {
            'gateway_requests_total{method="GET",route="/t",upstream="tickets",status="200"}': (
                "0+60x20"
            ),
            'gateway_requests_total{method="GET",route="/t",upstream="tickets",status="502"}': (
                "0+12x20"
            ),
            'gateway_requests_total{method="GET",route="/e",upstream="events",status="200"}': (
                "0+60x20"
            ),
        },
        "eval_time": "15m",
        "fires": [{"upstream": "tickets", "severity": "critical"}],
    },
    {
        "alertname": "FlotillaGatewayLatencyHigh",
        "series": {
            **histogram(
                "gateway_request_duration_seconds",
                'route="/e",upstream="events"',
                {"1": 6, "5": 60},
            ),
            **histogram(
                "gateway_request_duration_seconds",
                'route="/a",upstream="auth"',
                {"1": 60, "5": 60},
            ),
        },
        "eval_time": "20m",
        "fires": [{"upstream": "events", "severity": "warning"}],
    },
    {
        "alertname": "FlotillaGatewayBreakerOpen",
        "series": {
            'gateway_circuit_state{upstream="media"}': "0 1x5",
            'gateway_circuit_state{upstream="auth"}': "0x5",
            'gateway_circuit_state{upstream="events"}': "0 2x5",  # half-open: trying again
        },
        "eval_time": "4m",
        "fires": [{"upstream": "media", "severity": "critical"}],
    },
    {
        "alertname": "FlotillaGatewayUpstreamErrors",
        "series": {
            'gateway_upstream_errors_total{upstream="media",kind="upstream_timeout"}': "0+30x20",
            'gateway_upstream_errors_total{upstream="auth",kind="upstream_unavailable"}': (
                "0+1x20"
            ),
        },
        "eval_time": "15m",
        "fires": [{"upstream": "media", "kind": "upstream_timeout", "severity": "warning"}],
    },
    {
        "alertname": "FlotillaSchedulerCallsLate",
        "series": histogram(
            "scheduler_call_lateness_seconds", "", {"0.5": 50, "1": 50, "2.5": 60, "30": 60}
        ),
        "eval_time": "15m",
        "fires": [{"severity": "warning"}],
    },
    {
        "alertname": "FlotillaSchedulerCallsVeryLate",
        "series": histogram(
            "scheduler_call_lateness_seconds", "", {"1": 50, "30": 50, "60": 60, "300": 60}
        ),
        "eval_time": "15m",
        "fires": [{"severity": "critical"}],
    },
    {
        "alertname": "FlotillaSchedulerCallsVeryLate",  # only late: the warning, not this
        "series": histogram(
            "scheduler_call_lateness_seconds", "", {"0.5": 50, "1": 50, "2.5": 60, "30": 60}
        ),
        "eval_time": "15m",
        "fires": [],
    },
    {
        "alertname": "FlotillaSchedulerCallsFailing",
        "series": {
            'scheduler_calls_failed_total{instance="w1"}': "0+30x40",
            'scheduler_calls_succeeded_total{instance="w1"}': "0+30x40",
        },
        "eval_time": "35m",
        "fires": [{"severity": "warning"}],
    },
    {
        "alertname": "FlotillaSchedulerCallsFailing",  # targets failing now and then
        "series": {
            'scheduler_calls_failed_total{instance="w1"}': "0+3x40",
            'scheduler_calls_succeeded_total{instance="w1"}': "0+60x40",
        },
        "eval_time": "35m",
        "fires": [],
    },
    {
        "alertname": "FlotillaSchedulerCallsLost",
        "series": {'scheduler_calls_lost_total{instance="w1"}': "0 0 1 1 1"},
        "eval_time": "3m",
        "fires": [{"severity": "warning"}],
    },
    {
        "alertname": "FlotillaQueueBacklog",
        "series": {
            'rq_queue_jobs{instance="w1",queue="tickets",state="queued"}': "600x15",
            'rq_queue_jobs{instance="w2",queue="tickets",state="queued"}': "600x15",
            'rq_queue_jobs{instance="w1",queue="scheduler",state="queued"}': "10x15",
            'rq_queue_jobs{instance="w1",queue="scheduler",state="scheduled"}': "9000x15",
        },
        "eval_time": "12m",
        "fires": [{"queue": "tickets", "severity": "warning"}],
    },
    {
        "alertname": "FlotillaQueueJobsFailing",
        "series": {
            'rq_queue_jobs{instance="w1",queue="datapoints",state="failed"}': "0 0 1 1",
            'rq_queue_jobs{instance="w1",queue="tickets",state="failed"}': "3 3 3 3",
        },
        "eval_time": "3m",
        "fires": [{"queue": "datapoints", "severity": "warning"}],
    },
    {
        "alertname": "FlotillaBacklogUnreadable",
        "series": {
            'scheduler_worker_backlog_read{instance="w1"}': "1 0x10",
            'scheduler_worker_backlog_read{instance="w2"}': "1 0x10",
        },
        "eval_time": "8m",
        "fires": [{"severity": "critical"}],
    },
    {
        "alertname": "FlotillaBacklogUnreadable",  # one worker still reads Redis
        "series": {
            'scheduler_worker_backlog_read{instance="w1"}': "1 0x10",
            'scheduler_worker_backlog_read{instance="w2"}': "1x10",
        },
        "eval_time": "8m",
        "fires": [],
    },
    {
        "alertname": "FlotillaStreamConsumerLag",
        "series": {
            'redis_stream_group_lag{stream="flotilla:users",group="tickets"}': "150x15",
            'redis_stream_group_lag{stream="flotilla:users",group="events"}': "3x15",
        },
        "eval_time": "12m",
        "fires": [{"stream": "flotilla:users", "group": "tickets", "severity": "warning"}],
    },
    {
        "alertname": "FlotillaStreamEntriesParked",
        "series": {
            'redis_stream_dead_letters{stream="flotilla:users",group="events"}': "0 0 2 2",
            'redis_stream_dead_letters{stream="flotilla:users",group="tickets"}': "5 5 5 5",
        },
        "eval_time": "3m",
        "fires": [{"stream": "flotilla:users", "group": "events", "severity": "warning"}],
    },
]


def promtool_unit_tests(rules_file: str) -> dict[str, Any]:
    return {
        "rule_files": [rules_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": values}
                    for series, values in case["series"].items()
                ],
                "alert_rule_test": [
                    {
                        "eval_time": case["eval_time"],
                        "alertname": case["alertname"],
                        "exp_alerts": [{"exp_labels": labels} for labels in case["fires"]],
                    }
                ],
            }
            for case in ALERT_CASES
        ],
    }


def write_unit_tests(directory: Path) -> Path:
    """The rules without their annotations (promtool compares them whole; their templates
    are checked by `promtool check rules`), and the cases as a promtool test file."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (directory / "rules.yaml").write_text(yaml.safe_dump(rules))
    tests = directory / "tests.yaml"
    tests.write_text(yaml.safe_dump(promtool_unit_tests("rules.yaml"), sort_keys=False))
    return tests


def test_each_alert_fires_on_its_symptom_and_not_on_healthy_series(
    promtool: str, tmp_path: Path
) -> None:
    output = run_promtool(promtool, "test", "rules", write_unit_tests(tmp_path))
    assert "SUCCESS" in output


def test_every_alert_has_a_unit_test_that_sees_it_fire() -> None:
    fired = {case["alertname"] for case in ALERT_CASES if case["fires"]}
    assert {rule["alert"] for rule in alert_rules()} == fired


def test_a_wrong_expectation_fails_the_unit_tests(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: a target that is up does not make FlotillaTargetDown fire."""
    tests_path = write_unit_tests(tmp_path)
    tests = yaml.safe_load(tests_path.read_text())
    first = tests["tests"][0]["alert_rule_test"][0]
    first["exp_alerts"].append(
        {"exp_labels": {"job": "events", "instance": "events:8002", "severity": "critical"}}
    )
    tests_path.write_text(yaml.safe_dump(tests))
    result = subprocess.run([promtool, "test", "rules", str(tests_path)], capture_output=True)
    assert result.returncode != 0


# -- the rules' shape -------------------------------------------------------------------


def heading_anchors(markdown: str) -> set[str]:
    """The anchors a Markdown renderer gives headings (lowercase, punctuation dropped)."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_alert_says_how_long_how_bad_what_and_where_to_read() -> None:
    anchors = heading_anchors(OPERATIONS.read_text())
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules), "alert names must be unique"
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and len(annotations["description"]) > 80, name
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == "docs/operations.md", name
        assert anchor in anchors, f"{name}: docs/operations.md has no heading #{anchor}"


def test_the_operator_copy_holds_the_same_rules() -> None:
    resource = yaml.safe_load(OPERATOR_RULES.read_text())
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["name"]
    plain = yaml.safe_load(RULES.read_text())["groups"]
    assert resource["spec"]["groups"] == plain, (
        "deploy/monitoring/prometheus-rule.yaml differs from prometheus-rules.yaml: write its "
        "spec.groups again from the plain file's groups"
    )


# -- the dashboard's shape --------------------------------------------------------------


def test_the_dashboard_is_grafana_json_with_a_query_in_every_panel() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    panels = board["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {item["name"] for item in board["templating"]["list"]}
    assert {"datasource", "service"} <= variables
    for panel in dashboard_panels():
        assert panel["title"] and panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_the_dashboard_shows_what_it_promises() -> None:
    """Request rate, errors, latency, breakers, the scheduler, queues and stream lag."""
    queries = " ".join(dashboard_queries())
    for metric in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "gateway_circuit_state",
        "scheduler_calls_fired_total",
        "scheduler_calls_failed_total",
        "scheduler_call_lateness_seconds_bucket",
        "rq_queue_jobs",
        "redis_stream_group_lag",
    ):
        assert metric in queries, metric


# -- every name they use is exported by the code ----------------------------------------


def without_strings(query: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)


def selectors(query: str) -> Iterator[tuple[str | None, set[str]]]:
    """(metric name or None, label names matched) of each `name{...}` and bare `name`."""
    text = without_strings(query)
    for match in re.finditer(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}", text):
        labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", match.group(2)))
        yield match.group(1), labels
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    for match in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)\b(?!\s*[({])", bare):
        if match.group(1).lower() not in PROMQL_WORDS:
            yield match.group(1), set()


def grouping_labels(query: str) -> set[str]:
    lists = re.findall(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)",
        without_strings(query),
    )
    return {label.strip() for group in lists for label in group.split(",") if label.strip()}


def test_the_name_finder_sees_names_and_labels() -> None:
    """The check below relies on it: it must see a misspelt name and a misspelt label."""
    query = 'sum by (upstrem) (rate(gateway_request_total{status=~"5..",rout="x"}[5m])) / up'
    found = list(selectors(query))
    assert ("gateway_request_total", {"status", "rout"}) in found and ("up", set()) in found
    assert grouping_labels(query) == {"upstrem"}
    assert {name for name, _ in selectors("histogram_quantile(0.99, sum(x_bucket)) > 1")} == {
        "x_bucket"
    }


@pytest.fixture
def exported(redis_client: redis.Redis, make_app: Any) -> dict[str, set[str]]:
    """Series name -> label names, as the real processes' registries export them, after
    each kind of event was recorded once through the code's own functions."""
    record_gateway_events()
    record_scheduler_outcomes()
    series = scrape_a_service(make_app)
    stream = "flotilla:users"
    redis_client.xadd(stream, {"type": "user.created"})
    redis_client.xgroup_create(stream, "tickets", id="0")
    backlog = CollectorRegistry()
    backlog.register(scheduler_metrics.BacklogCollector(redis_client, stream=stream))
    for name, labels in collect(backlog).items():
        series.setdefault(name, set()).update(labels)
    for name, labels in PROMETHEUS_SERIES.items():
        series.setdefault(name, set()).update(labels)
    return series


def scrape_a_service(make_app: Any) -> dict[str, set[str]]:
    """A service answers a request, then its /metrics is read as Prometheus reads it (this
    process's registry: the gateway's and the worker's metrics were recorded here too)."""
    client = make_app().test_client()
    assert client.get("/health").status_code == 200
    page = client.get("/metrics")
    assert page.status_code == 200
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(page.get_data(as_text=True)):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    assert "service" in series["http_requests_total"]
    return series


def record_gateway_events() -> None:
    gateway.metrics.observe("GET", "/monitoring-test", "events", 200, 0.01)
    gateway.metrics.upstream_error("events", "upstream_timeout")
    gateway.metrics.rate_limited("/monitoring-test")
    gateway.metrics.circuit_state("monitoring-test", 0)


def record_scheduler_outcomes() -> None:
    outcome = Outcome(started_at=0.0, duration_ms=1.0, status_code=200)
    recorded = [Recorded(1, 1, outcome, status, None) for status in (SUCCEEDED, PENDING, FAILED)]
    scheduler_metrics.count_recorded(recorded)
    scheduler_metrics.count_recovered([Recorded(2, 1, outcome, PENDING, None)])
    scheduler_metrics.observe_lateness(datetime.now(UTC), datetime.now(UTC).timestamp())


def collect(registry: CollectorRegistry) -> dict[str, set[str]]:
    series: dict[str, set[str]] = {}
    for family in registry.collect():
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def variable_queries() -> list[str]:
    """The dashboard's `label_values(metric, label)` variables as the PromQL they read."""
    queries = []
    for item in dashboard()["templating"]["list"]:
        if "definition" in item:
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", item["definition"])
            assert match, item["definition"]
            queries.append(f"group by ({match.group(2)}) ({match.group(1)})")
    return queries


def used_queries() -> list[str]:
    return [rule["expr"] for rule in alert_rules()] + dashboard_queries() + variable_queries()


def test_every_metric_and_label_the_rules_and_dashboard_use_is_exported(
    exported: dict[str, set[str]],
) -> None:
    for query in used_queries():
        names: set[str] = set()
        for name, labels in selectors(query):
            if name is None:
                continue
            assert name in exported, f"{name} is not exported by the code (in {query!r})"
            assert labels <= exported[name] | TARGET_LABELS, f"{name}: {labels} in {query!r}"
            names.add(name)
        available = set().union(*(exported[name] for name in names)) | TARGET_LABELS
        assert grouping_labels(query) <= available, f"unknown label in {query!r}"


def test_the_queues_the_backlog_reads_are_the_services_queues() -> None:
    from datapoints_service.documents import jobs as documents
    from scheduler_service import queueing
    from tickets_service import notifications

    expected = {queueing.QUEUE_NAME, notifications.QUEUE_NAME, documents.QUEUE_NAME}
    assert set(scheduler_metrics.RQ_QUEUES) == expected


@pytest.fixture
def service_under_test() -> ServiceUnderTest:
    """The app whose /metrics the name check reads: any service's (the scheduler's)."""
    return ServiceUnderTest("scheduler", scheduler_service.create_app, {})
