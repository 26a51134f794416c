"""Body of ``remediate``: one action of the durable remediation runner (outcomes reach the incident through it)."""

from __future__ import annotations

from shared.app import Services
from shared.remediation.runner import HandleResult


def handle(svc: Services, body: bytes) -> HandleResult:
    return svc.remediation.handle(body)
