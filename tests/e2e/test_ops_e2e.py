"""Operating beatra end to end: two gunicorn (gevent) workers and two Dramatiq worker processes
write metrics to one multiprocess directory and /metrics sums them; every log line of gunicorn,
the app and Dramatiq is one JSON object; readiness reflects the real dependencies."""

from __future__ import annotations

import glob
import json
from collections import defaultdict
from pathlib import Path

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.procs import TaskStack, children, wait_until

pytestmark = pytest.mark.e2e

MODELS = ("beatra_http_requests_total", (("method", "GET"), ("route", "/v1/models"),
                                         ("status", "200")))


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = requests.get(f"{url}/metrics", timeout=30)
    assert resp.status_code == 200, resp.text
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def models_counts_by_pid(directory: Path) -> dict[int, float]:
    """What each process wrote for GET /v1/models → 200, read from its own file."""
    counts: dict[int, float] = defaultdict(float)
    for path in glob.glob(str(directory / "counter_*.db")):
        pid = int(Path(path).stem.rsplit("_", 1)[1])
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(path):
            _metric, name, labels, _help = json.loads(key)
            if name == "beatra_http_requests_total" and labels.get("route") == "/v1/models" \
                    and labels.get("status") == "200":
                counts[pid] += value
    return counts


def json_lines(log: Path) -> list[dict]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"{log.name}: not a JSON line: {line!r}")
        assert isinstance(entry, dict) and {"ts", "level", "msg"} <= entry.keys(), line
        parsed.append(entry)
    return parsed


def test_metrics_sum_over_processes_and_logs_are_json(tmp_path: Path, redis_url: str) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    stack = TaskStack(tmp_path, redis_url=redis_url, env={
        "BEATRA_LOG_LEVEL": "INFO", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    stack.migrate()
    stack.start_sandbox()
    stack.start_gateway(workers=2)
    stack.start_task_workers(processes=2)
    try:
        workers = set(children(stack.procs["gateway"].pid))
        assert len(workers) == 2
        account = stack.new_account()

        # Fresh connections until both gunicorn workers have answered some of them.
        sent = 0
        while sent < 400:
            resp = account.http.get(f"{stack.url}/v1/models", timeout=30,
                                    headers={"Connection": "close"})
            assert resp.status_code == 200
            sent += 1
            if sent >= 20 and all(models_counts_by_pid(metrics_dir).get(p) for p in workers):
                break
        per_pid = models_counts_by_pid(metrics_dir)
        assert set(per_pid) == workers and all(per_pid.values()), per_pid

        # A task runs in a Dramatiq process: its charge is counted there, not in gunicorn.
        submit = account.post("/v1/images/generations",
                              json={"model": "gpt-image-2", "prompt": "a red fox"})
        assert submit.status_code == 202, submit.text
        task_id = submit.json()["task_id"]
        assert account.wait(task_id)["status"] == "succeeded"

        samples = wait_until(lambda: (lambda s: s if any(
            k[0] == "beatra_credits_charged_total" and v > 0 for k, v in s.items()) else None)(
            scrape(stack.url)), what="the worker's charge in /metrics")
        assert samples[MODELS] == sent == sum(per_pid.values())
        assert samples[("beatra_queue_depth", (("queue", "beatra-tasks"),))] >= 0
        assert samples[("beatra_queue_depth", (("queue", "beatra-webhooks"),))] >= 0
        charged_in = {int(Path(p).stem.rsplit("_", 1)[1])
                      for p in glob.glob(str(metrics_dir / "counter_*.db"))} - workers
        assert charged_in, "no counter file from a Dramatiq process"

        ready = requests.get(f"{stack.url}/readyz", timeout=30)
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok", "storage": "ok"}
    finally:
        stack.close()

    gateway = json_lines(tmp_path / "gateway.log")
    assert any(e["logger"].startswith("gunicorn") for e in gateway)  # the master's own lines
    access = [e for e in gateway if e["logger"] == "beatra.access"
              and e.get("route") == "/v1/images/generations"]
    assert len(access) == 1 and access[0]["request_id"] == submit.headers["X-Request-Id"]
    assert not [e for e in gateway if e["logger"] == "gunicorn.access"]  # no second access line
    assert access[0]["status"] == 202 and access[0]["duration_ms"] >= 0

    tasks = json_lines(tmp_path / "tasks.log")
    done = [e for e in tasks if e.get("task_id") == task_id and e["msg"] == "task succeeded"]
    assert len(done) == 1, tasks  # once: no plain + JSON duplicates
    assert done[0]["request_id"] == submit.headers["X-Request-Id"]
    assert any(e["logger"].startswith("dramatiq") for e in tasks)  # Dramatiq's own lines


def test_readyz_fails_while_redis_is_down(tmp_path: Path) -> None:
    from tests.services.throwaway import ThrowawayRedis, redis_server_available

    if not redis_server_available():
        pytest.skip("redis-server not installed")
    redis = ThrowawayRedis()
    redis.start()
    stack = TaskStack(tmp_path, redis_url=redis.url)
    try:
        stack.migrate()
        stack.start_gateway(workers=1)
        assert requests.get(f"{stack.url}/readyz", timeout=30).status_code == 200
        redis.stop()
        # A 503 requests.Response is falsy: wait_until gets it inside a list.
        [down] = wait_until(lambda: (lambda r: [r] if r.status_code == 503 else None)(
            requests.get(f"{stack.url}/readyz", timeout=30)), what="readyz to fail")
        err = down.json()["error"]
        assert err["code"] == "service_unavailable" and err["retryable"] is True
        assert err["details"]["checks"]["redis"].startswith("error:")
        assert err["details"]["checks"]["database"] == "ok"
        redis.start()
        wait_until(lambda: requests.get(f"{stack.url}/readyz", timeout=30).ok,
                   what="readyz to recover")
    finally:
        stack.close()
        redis.destroy()
