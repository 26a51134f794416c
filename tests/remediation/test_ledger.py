"""The remediation ledger: idempotency keys, create-if-absent, ETag updates, listing — Table and in-memory alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.platform.errors import BadInputError, ConcurrencyError, PermissionError_, ThrottledError
from shared.platform.storage import StorageClients
from shared.remediation.ledger import (
    MAX_HISTORY,
    ActionKind,
    ActionOwnedError,
    ErrorInfo,
    HistoryEntry,
    InMemoryRemediationLedger,
    LedgerEntry,
    RemediationLedger,
    RemediationRequest,
    RemediationState,
    TableRemediationLedger,
    error_info,
    idempotency_key,
    safe_message,
)

TENANT = "5f0c1c39-4e0b-4d7e-9b51-1a7d3c2a0a01"
OTHER = "9a3e2d11-7c4f-4b8a-a2d6-3e5b7c9d0b02"
T0 = datetime(2025, 3, 10, 15, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "table"])
def ledger(request: pytest.FixtureRequest) -> RemediationLedger:
    if request.param == "memory":
        return InMemoryRemediationLedger()
    storage: StorageClients = request.getfixturevalue("storage")
    return TableRemediationLedger(storage)


def _request(
    *, tenant: str = TENANT, incident: str = "inc-1", user: str = "alice@contoso.com", approved: bool = True
) -> RemediationRequest:
    return RemediationRequest(
        tenant_id=tenant,
        incident_id=incident,
        action=ActionKind.ISOLATE_IDENTITY,
        target={"user": user},
        requested_by="itdr",
        approved=approved,
    )


def test_idempotency_key_is_a_deterministic_hash_of_tenant_action_target_incident() -> None:
    base = idempotency_key(TENANT, ActionKind.ISOLATE_IDENTITY, {"user": "a@x.com", "n": 1}, "inc-1")
    assert base == idempotency_key(TENANT, "isolate_identity", {"n": 1, "user": "a@x.com"}, "inc-1")
    assert base.startswith("rm-") and len(base) == 43
    variants = {
        idempotency_key(OTHER, ActionKind.ISOLATE_IDENTITY, {"user": "a@x.com", "n": 1}, "inc-1"),
        idempotency_key(TENANT, ActionKind.ENABLE_IDENTITY, {"user": "a@x.com", "n": 1}, "inc-1"),
        idempotency_key(TENANT, ActionKind.ISOLATE_IDENTITY, {"user": "b@x.com", "n": 1}, "inc-1"),
        idempotency_key(TENANT, ActionKind.ISOLATE_IDENTITY, {"user": "a@x.com", "n": 1}, "inc-2"),
    }
    assert base not in variants and len(variants) == 4


def test_request_derives_its_key_and_refuses_a_forged_one() -> None:
    req = _request()
    assert req.idempotency_key == idempotency_key(
        TENANT, ActionKind.ISOLATE_IDENTITY, {"user": "alice@contoso.com"}, "inc-1"
    )
    assert RemediationRequest.from_body(req.to_body()) == req
    forged = req.model_dump() | {"idempotency_key": "rm-" + "0" * 40}
    with pytest.raises(ValueError, match="idempotency_key does not match"):
        RemediationRequest.model_validate(forged)
    with pytest.raises(BadInputError) as exc:
        RemediationRequest.from_body(b'{"tenant_id": "x"}')
    assert exc.value.reason == "bad_remediation_message"


def test_create_is_create_if_absent(ledger: RemediationLedger) -> None:
    entry = LedgerEntry.new(_request(), state=RemediationState.PENDING, at=T0, note="planned")
    first = ledger.create_entry(entry)
    assert first.etag
    with pytest.raises(ActionOwnedError):
        ledger.create_entry(entry)
    assert isinstance(ActionOwnedError("x"), ConcurrencyError)


def test_round_trip_keeps_every_field(ledger: RemediationLedger) -> None:
    entry = LedgerEntry.new(
        _request(tenant="tenant/with#odd?chars"),
        state=RemediationState.PENDING,
        at=T0,
        source_alert_ids=["al-1", "al-2"],
    )
    entry.checkpoint = {"rules": [{"id": "AQAAAAgmfug=", "definition": {"display_name": ".", "sequence": 1}}]}
    entry.result = {"summary": "ok", "details": {"n": [1, 2]}}
    entry.last_error = ErrorInfo(
        error_class="ThrottledError", reason="throttled", message="m", status=429, retry_after=30.0
    )
    entry.next_attempt_at = T0 + timedelta(seconds=30)
    entry.lease_until = T0 + timedelta(minutes=5)
    entry.attempt = 2
    created = ledger.create_entry(entry)
    got = ledger.get_entry("tenant/with#odd?chars", entry.key)
    assert got is not None
    assert got.model_dump() == entry.model_dump()
    assert got.etag == created.etag
    assert ledger.get_entry(TENANT, entry.key) is None


def test_update_needs_the_current_etag(ledger: RemediationLedger) -> None:
    created = ledger.create_entry(LedgerEntry.new(_request(), state=RemediationState.PENDING, at=T0))
    mine = ledger.get_entry(TENANT, created.key)
    theirs = ledger.get_entry(TENANT, created.key)
    assert mine is not None and theirs is not None
    mine.attempt = 1
    mine.transition(RemediationState.RUNNING, at=T0, note="attempt 1")
    written = ledger.update_entry(mine)
    assert written.etag != created.etag
    theirs.attempt = 1
    theirs.transition(RemediationState.RUNNING, at=T0, note="attempt 1 elsewhere")
    with pytest.raises(ConcurrencyError):
        ledger.update_entry(theirs)
    stored = ledger.get_entry(TENANT, created.key)
    assert stored is not None
    assert [(h.state, h.note) for h in stored.history] == [
        (RemediationState.PENDING, ""),
        (RemediationState.RUNNING, "attempt 1"),
    ]


def test_list_filters_by_tenant_state_and_incident(ledger: RemediationLedger) -> None:
    rows = [
        (_request(user="a@contoso.com"), RemediationState.PENDING),
        (_request(user="b@contoso.com"), RemediationState.PENDING_APPROVAL),
        (_request(user="c@contoso.com", incident="inc-2"), RemediationState.PENDING),
        (_request(user="a@contoso.com", tenant=OTHER), RemediationState.PENDING),
    ]
    keys = []
    for i, (req, state) in enumerate(rows):
        ledger.create_entry(LedgerEntry.new(req, state=state, at=T0 + timedelta(seconds=i)))
        keys.append(req.idempotency_key)
    assert [e.key for e in ledger.list_entries(TENANT)] == keys[:3]
    assert [e.key for e in ledger.list_entries(TENANT, states=[RemediationState.PENDING])] == [keys[0], keys[2]]
    assert [e.key for e in ledger.list_entries(TENANT, incident_id="inc-2")] == [keys[2]]
    assert [e.key for e in ledger.list_entries(OTHER)] == [keys[3]]
    assert ledger.list_entries("nobody") == []


def test_history_is_bounded() -> None:
    entry = LedgerEntry.new(_request(), state=RemediationState.PENDING, at=T0)
    for i in range(MAX_HISTORY + 10):
        entry.transition(RemediationState.PENDING, at=T0, note=f"n{i}")
    assert len(entry.history) == MAX_HISTORY
    assert entry.history[-1] == HistoryEntry(
        at=T0, state=RemediationState.PENDING, attempt=0, note=f"n{MAX_HISTORY + 9}"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOi.abc.def failed", "Authorization: [redacted] failed"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig leaked", "token [redacted] leaked"),
        ("https://x.logic.azure.com/run?sp=1&sig=abcDEF123&x=1", "https://x.logic.azure.com/run?sp=1&[redacted]&x=1"),
        ("bearer fake-token:tenant", "[redacted]"),
        ("plain message", "plain message"),
    ],
)
def test_safe_message_redacts_tokens(text: str, expected: str) -> None:
    assert safe_message(text) == expected


def test_error_info_keeps_class_reason_and_graph_diagnostics() -> None:
    exc = PermissionError_(
        "Graph disable_user failed with 403",
        permission="User.EnableDisableAccount.All",
        status=403,
        graph_code="Authorization_RequestDenied",
        request_id="r-1",
    )
    assert error_info(exc) == ErrorInfo(
        error_class="PermissionError_",
        reason="missing_permission",
        message=str(exc),
        status=403,
        graph_code="Authorization_RequestDenied",
        request_id="r-1",
        permission="User.EnableDisableAccount.All",
    )
    throttled = error_info(ThrottledError("slow down", retry_after=12))
    assert (throttled.error_class, throttled.reason, throttled.retry_after) == ("ThrottledError", "throttled", 12.0)
    assert error_info(RuntimeError("boom")).reason == "unexpected"
