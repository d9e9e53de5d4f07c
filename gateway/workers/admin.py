"""The admin listener of a multi-worker gateway, served by the supervisor.

Each worker serves its ordinary admin application (`gateway.app.build_admin_app`) on a private Unix
socket; the supervisor answers `GATEWAY_ADMIN_LISTEN` for all of them:

- `/healthz`: the supervisor is alive (it restarts workers itself), with the worker counts;
- `/readyz`: every running worker's own readiness (upstream, store, Monosign), asked afresh; ready
  when at least one worker runs, every running worker is ready, and no shutdown has started;
- `/metrics`: every running worker's metrics, each sample labelled `worker`, plus the supervisor's own
  (without a `worker` label; its process's `process_*` share those families);
- `/config`: the configuration each running worker serves (its own `/config`: source, digest, load
  time), whether they all serve the same one (`agree`), and when they do, its digest and the time the
  last of them loaded it. Workers reload on their own (SIGHUP passed on, each watching the file), so
  for a moment after a change they may differ; `agree` stays false if one refused the new file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from gateway import __version__
from gateway.observability.logging import get_logger
from gateway.observability.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from gateway.workers.metrics_merge import MetricsConflict, StaticCollector, merge_expositions

log = get_logger("gateway.supervisor")

# A worker's readiness checks take at most 3 s each (concurrently); leave room for the answer.
WORKER_QUERY_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RunningWorker:
    index: int
    admin_socket: str


class Supervised(Protocol):
    """What the admin application needs from the supervisor."""

    configured_workers: int
    draining: bool
    registry: CollectorRegistry

    def running_workers(self) -> Sequence[RunningWorker]: ...


SUPERVISOR = web.AppKey("supervisor", Supervised)


async def query_worker(admin_socket: str, path: str) -> tuple[int, bytes]:
    """GET `path` from a worker's admin application; (status, body). Raises OSError (aiohttp's
    connection errors are OSErrors), aiohttp.ClientError or TimeoutError when it does not answer."""
    connector = aiohttp.UnixConnector(path=admin_socket)
    timeout = aiohttp.ClientTimeout(total=WORKER_QUERY_TIMEOUT)
    async with (aiohttp.ClientSession(connector=connector, timeout=timeout) as client,
                client.get(f"http://worker{path}") as response):
        return response.status, await response.read()


async def _worker_readiness(worker: RunningWorker) -> dict[str, Any]:
    try:
        status, body = await query_worker(worker.admin_socket, "/readyz")
        report = json.loads(body)
    except (OSError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return {"ok": False, "error": f"no answer ({type(exc).__name__})"}
    checks = report.get("checks", {}) if isinstance(report, dict) else {}
    return {"ok": status == 200, "checks": checks}


async def _healthz(request: web.Request) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    return web.json_response(
        {"status": "ok", "version": __version__,
         "workers": {"configured": supervisor.configured_workers, "running": len(supervisor.running_workers())}},
        headers={"Cache-Control": "no-store"},
    )


async def _readyz(request: web.Request) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    running = list(supervisor.running_workers())
    answers = await asyncio.gather(*(_worker_readiness(worker) for worker in running))
    checks: dict[str, Any] = {
        "workers": {"ok": bool(running), "running": len(running), "configured": supervisor.configured_workers},
    }
    if not running:
        checks["workers"]["error"] = "no worker is running"
    for worker, answer in zip(running, answers, strict=True):
        checks[f"worker-{worker.index}"] = answer
    if supervisor.draining:
        checks["shutdown"] = {"ok": False, "error": "the gateway is shutting down"}
    ready = all(check["ok"] for check in checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "ready": ready, "checks": checks},
                             status=200 if ready else 503, headers={"Cache-Control": "no-store"})


async def _worker_metrics(worker: RunningWorker) -> str | None:
    try:
        status, body = await query_worker(worker.admin_socket, "/metrics")
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
        log.warning("worker_metrics_unavailable", worker=worker.index, error=type(exc).__name__)
        return None
    return body.decode("utf-8") if status == 200 else None


async def _metrics(request: web.Request) -> web.Response:
    supervisor = request.app[SUPERVISOR]
    running = list(supervisor.running_workers())
    texts = await asyncio.gather(*(_worker_metrics(worker) for worker in running))
    own = generate_latest(supervisor.registry).decode("utf-8")
    try:
        families: list[Metric] = merge_expositions(
            {str(worker.index): text for worker, text in zip(running, texts, strict=True) if text is not None},
            own=own,
        )
    except (MetricsConflict, ValueError) as exc:
        log.error("worker_metrics_unmergeable", message="worker metrics cannot be merged", error=str(exc))
        families = merge_expositions({}, own=own)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StaticCollector(families))
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": "no-store"})


async def _worker_config(worker: RunningWorker) -> dict[str, Any]:
    try:
        status, body = await query_worker(worker.admin_socket, "/config")
        document = json.loads(body)
    except (OSError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return {"error": f"no answer ({type(exc).__name__})"}
    if status != 200 or not isinstance(document, dict):
        return {"error": f"answered {status}"}
    return document


def merge_configs(answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The workers' `/config` answers as one: whether they agree, and if so on what (pure)."""
    served = {answer.get("digest") or answer.get("source") for answer in answers.values()}
    agree = bool(answers) and not any("error" in answer for answer in answers.values()) and len(served) == 1
    merged: dict[str, Any] = {"agree": agree}
    if agree:
        first = next(iter(answers.values()))
        merged.update({key: value for key, value in first.items() if key != "loaded_at"})
        loaded = [answer["loaded_at"] for answer in answers.values() if isinstance(answer.get("loaded_at"), str)]
        if loaded:
            merged["loaded_at"] = max(loaded)  # ISO 8601 in UTC: the latest sorts last
    merged["workers"] = answers
    return merged


async def _config(request: web.Request) -> web.Response:
    running = list(request.app[SUPERVISOR].running_workers())
    answers = await asyncio.gather(*(_worker_config(worker) for worker in running))
    merged = merge_configs({str(worker.index): answer for worker, answer in zip(running, answers, strict=True)})
    return web.json_response(merged, headers={"Cache-Control": "no-store"})


def build_supervisor_admin_app(supervisor: Supervised) -> web.Application:
    app = web.Application(client_max_size=1024)
    app[SUPERVISOR] = supervisor
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/config", _config)
    return app
