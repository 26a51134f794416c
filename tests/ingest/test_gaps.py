"""The gap detector over timestamps in time order: which silences are findings, and which are not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.ingest.gaps import MAX_CANDIDATES, GapDetector, GapPolicy, workload_of

A = "9f6a3d1e-0c4b-4e8a-9d57-2b1f0c3e4a11"
B = "2c4e6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
HOUR = 3600.0


def ts(minutes: float) -> float:
    return (START + timedelta(minutes=minutes)).timestamp()


def iso(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def feed(detector: GapDetector, records: list[tuple[float, str, str]]) -> None:
    for minute, tenant, workload in sorted(records):
        detector.observe_at(tenant, workload, ts(minute))


def every(
    step: int, days: int, tenant: str, workload: str, *, skip: tuple[float, float] | None = None, offset: int = 0
):
    out = []
    for m in range(offset, days * 1440, step):
        if skip is None or not skip[0] <= m < skip[1]:
            out.append((float(m), tenant, workload))
    return out


@pytest.mark.parametrize(
    ("record_type", "workload"),
    [
        (15, "AzureActiveDirectory"),
        ("8", "AzureActiveDirectory"),
        (1, "Exchange"),
        (50, "Exchange"),
        ("ExchangeItem", "Exchange"),
        (6, "SharePoint"),
        ("SharePointFileOperation", "SharePoint"),
        ("OneDrive", "SharePoint"),
        (25, "General"),
        (None, "General"),
    ],
)
def test_workload_of_record_types(record_type: int | str | None, workload: str) -> None:
    assert workload_of(record_type) == workload


def test_a_feed_that_stops_before_the_rest_is_a_gap_until_the_end() -> None:
    d = GapDetector()
    stop = 9 * 1440  # SharePoint's last record at the start of day 9 (minute 12,960), the input runs to day 12
    feed(d, every(30, 12, A, "AzureActiveDirectory") + every(30, 12, A, "SharePoint", skip=(stop + 1, 10**9)))
    (alert,) = d.alerts()
    assert alert.context["workload"] == "SharePoint" and alert.context["edge"] == "end"
    assert (alert.context["silent_from"], alert.context["silent_to"]) == (iso(stop), iso(12 * 1440 - 30))
    assert alert.context["other_records_inside"] == (12 * 1440 - 30 - stop) // 30  # the sign-ins after it
    assert alert.evidence_record_ids == ["feed:Audit.SharePoint:2026-11-11"]
    assert "(until the input ended at 2026-11-13T23:30:00Z)" in alert.summary


def test_a_tenant_silent_while_another_tenant_flows_names_the_tenant() -> None:
    d = GapDetector()
    skip = (4 * 1440, 6 * 1440)
    feed(
        d,
        every(20, 10, A, "AzureActiveDirectory", skip=skip)
        + every(30, 10, A, "Exchange", skip=skip)
        + every(25, 10, B, "AzureActiveDirectory"),
    )
    (alert,) = d.alerts()  # one alert for the tenant, none for each of its silent workloads
    assert (alert.tenant_id, alert.context["workload"], alert.context["content_type"]) == (A, "*", "*")
    assert (alert.context["silent_from"], alert.context["silent_to"]) == (iso(skip[0] - 20), iso(skip[1]))
    assert alert.summary.startswith(f"No records of tenant {A} from ")
    assert alert.title == "Audit records missing: the whole tenant silent for 48.3 h"
    assert "while the other tenants kept flowing" in alert.summary


def test_a_hole_in_the_whole_input_is_not_a_gap() -> None:
    d = GapDetector()
    skip = (4 * 1440, 6 * 1440)  # everything stops: the export's window, not a workload's silence
    feed(d, every(20, 10, A, "AzureActiveDirectory", skip=skip) + every(30, 10, A, "Exchange", skip=skip))
    assert d.alerts() == []


def test_a_short_silence_is_not_a_gap_even_for_a_busy_stream() -> None:
    d = GapDetector()
    skip = (3 * 1440, 3 * 1440 + 5 * 60)  # five hours: under the six-hour floor
    feed(d, every(10, 7, A, "AzureActiveDirectory") + every(10, 7, A, "Exchange", skip=skip))
    assert d.alerts() == []
    d = GapDetector(GapPolicy(floor_s=4 * HOUR, min_expected_hours=4))
    feed(d, every(10, 7, A, "AzureActiveDirectory") + every(10, 7, A, "Exchange", skip=skip))
    (alert,) = d.alerts()
    assert alert.context["silent_hours"] == 5.2  # 5 h 10 min between the records around it


def test_a_stream_whose_usual_gaps_are_long_needs_a_longer_silence() -> None:
    # Exchange sends a batch every 12 hours: its own rhythm has no busy clock hour to miss
    d = GapDetector()
    feed(d, every(20, 14, A, "AzureActiveDirectory") + every(720, 14, A, "Exchange", skip=(6 * 1440, 6 * 1440 + 720)))
    assert d.alerts() == []


def test_memory_per_stream_is_bounded_and_late_records_count_at_the_latest_time() -> None:
    d = GapDetector()
    records = every(5, 3, A, "AzureActiveDirectory")
    for k in range(40):  # forty seven-hour silences of Exchange, every 9 hours
        records.append((k * 540.0, A, "Exchange"))
    feed(d, records)
    d.observe_at(A, "Exchange", ts(10))  # a late record: not a negative gap
    stream = d._workloads[(A, "Exchange")]
    assert len(stream.candidates) == MAX_CANDIDATES
    assert sum(stream.hist) == 40  # 39 gaps and the late record (a zero gap)
    assert stream.last == ts(39 * 540)


@pytest.mark.parametrize(
    "kwargs",
    [{"floor_s": 0}, {"factor": 0.5}, {"quantile": 1.0}, {"min_expected_hours": 0}, {"rest_share": 0}],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GapPolicy(**kwargs)


def test_two_silences_of_a_stream_starting_the_same_day_are_one_alert() -> None:
    d = GapDetector(GapPolicy(floor_s=4 * HOUR, min_expected_hours=4))
    day = 7 * 1440
    first, second = (day + 60, day + 60 + 300), (day + 720, day + 720 + 300)  # 01:00-06:00 and 12:00-17:00
    records = every(10, 14, A, "AzureActiveDirectory")
    records += [
        r for r in every(10, 14, A, "Exchange") if not (first[0] <= r[0] < first[1] or second[0] <= r[0] < second[1])
    ]
    feed(d, records)
    (alert,) = d.alerts()
    assert (alert.count, alert.context["silent_from"], alert.last_seen) == (2, iso(first[0] - 10), ts(second[1]))
    assert alert.summary.endswith(f"Again from {iso(second[0] - 10)} to {iso(second[1])}.")


def test_records_in_time_order_per_tenant_find_a_workload_gap() -> None:
    # tenant A's records first, then tenant B's: a workload's silence is judged within its own tenant
    d = GapDetector()
    skip = (3 * 1440, 6 * 1440)
    a = every(20, 10, A, "AzureActiveDirectory") + every(30, 10, A, "Exchange")
    b = every(20, 10, B, "AzureActiveDirectory") + every(30, 10, B, "Exchange", skip=skip)
    for minute, tenant, workload in sorted(a) + sorted(b):
        d.observe_at(tenant, workload, ts(minute))
    (alert,) = d.alerts()
    assert (alert.tenant_id, alert.context["workload"]) == (B, "Exchange")
    assert (alert.context["silent_from"], alert.context["silent_to"]) == (iso(skip[0] - 30), iso(skip[1]))
