"""Kubernetes call failures: one log line per retry, the API's answer kept as the cause."""

from __future__ import annotations

import logging

import pytest
from kubernetes_asyncio.client.rest import ApiException

from lsst_hub.spawner.kube import Kube, KubeRefusedError, KubeUnavailableError
from tests.spawner.conftest import Env

LOGGER = "lsst_hub.spawner.kube"


def kube(env: Env, retry_timeout: float = 30.0) -> Kube:
    return Kube(env.core, env.namespace, request_timeout=30.0, retry_timeout=retry_timeout)


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and "retrying" in r.message]


async def test_each_retry_logs_one_line_with_status_and_message(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.cluster.faults.add(verb="list", resource="pods", status=503, count=2)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        await kube(env).call("list pods", env.core.list_namespaced_pod, env.namespace)
    lines = retry_lines(caplog)
    assert len(lines) == 2
    for line in lines:
        assert "\n" not in line
        assert line.startswith("list pods failed (503 Service Unavailable: injected fault")
        assert "HTTP response headers" not in line  # not the whole ApiException


async def test_final_failure_keeps_the_api_exception_as_cause(env: Env) -> None:
    env.cluster.faults.add(verb="list", resource="pods", status=403, count=1)
    with pytest.raises(KubeRefusedError, match="list pods: Kubernetes answered 403") as info:
        await kube(env).call("list pods", env.core.list_namespaced_pod, env.namespace)
    assert isinstance(info.value.__cause__, ApiException)
    assert info.value.__cause__.status == 403


async def test_exhausted_retries_keep_the_last_api_exception_as_cause(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.cluster.faults.add(verb="list", resource="pods", status=500, count=1000)
    with (
        caplog.at_level(logging.INFO, logger=LOGGER),
        pytest.raises(KubeUnavailableError, match="list pods: Kubernetes answered 500") as info,
    ):
        await kube(env, retry_timeout=0.5).call(
            "list pods", env.core.list_namespaced_pod, env.namespace
        )
    assert isinstance(info.value.__cause__, ApiException)
    assert info.value.__cause__.status == 500
    assert all("\n" not in line for line in retry_lines(caplog))
