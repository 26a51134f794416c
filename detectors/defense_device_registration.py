"""A device registered or joined to Entra ID for a user — most telling within hours of a risky sign-in.

After phishing a session, attackers register a device of their own (AADInternals, ROADtools) to get a
Primary Refresh Token that survives a password reset and satisfies "require a registered or compliant
device" Conditional Access. Entra's Device Registration Service writes:

* ``Register device.`` / ``Add device.``: the device (display name, OS, trust type in ``ModifiedProperties``
  and ``additionalDetails``), no user: remembered for the tenant for `DEVICE_MEMORY_S`;
* ``Add registered owner to device.`` / ``Add registered users to device.``: the device and its user in
  ``Target`` (the parser keys these records on that user, see ``shared.records.event.SUBJECT_IS_TARGET_OPS``).

One finding per user and device: raised two steps (high) when the user had a risky sign-in within
`RISK_WINDOW_S`; without one, low only when the record's address is a network the user's sign-in baseline does
not know (a new laptop or phone set up at home or in the office, or by the registration service without an
address, is the tenant's ordinary work and is not reported). A registration record whose actor is the user (a device
registered through an admin tool) is reported the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import orjson

from shared.alert_model import Category, DetectorMeta, Finding, Need, Severity
from shared.detection.base import DetectionContext, Detector
from shared.detection.helpers import raise_for_risk, risk_context, risk_note, risk_of
from shared.detection.tenant_baseline import familiar_network
from shared.records.event import Event, as_int

REGISTER_OPS = frozenset({"register device", "add device"})
OWNER_OPS = frozenset({"add registered owner to device", "add registered users to device"})
RISK_WINDOW_S = 8 * 3600
DEVICE_MEMORY_S = 3600
MAX_DEVICES = 24
SECTION = "defense_device_registration"


def _device_ref(event: Event) -> tuple[str | None, str | None]:
    """(device object id, display name) from ``Target``: the GUID after ``Device_`` and the name (type 1)."""
    oid: str | None = None
    name: str | None = None
    for t in event.targets:
        ident = (t.ID or "").strip()
        typ = t.Type if isinstance(t.Type, int) else as_int(t.Type)
        if oid is None and ident.startswith("Device_"):
            oid = ident[7:].lower()
        elif name is None and typ == 1 and ident:
            name = ident
    return oid, name


def _device_facts(event: Event) -> dict[str, str]:
    """OS, trust type and device id from ``ModifiedProperties`` (``TargetId.DeviceOSType``...) and the
    ``additionalDetails`` JSON of ``ExtendedProperties``."""
    facts: dict[str, str] = {}
    details = event.extended_properties.get("additionaldetails", "")
    if details.strip().startswith("{"):
        try:
            got = orjson.loads(details)
        except orjson.JSONDecodeError:
            got = {}
        if isinstance(got, dict):
            for key, name in (("DeviceOSType", "os"), ("DeviceTrustType", "trust_type"), ("DeviceId", "device_id")):
                v = got.get(key)
                if isinstance(v, str) and v:
                    facts[name] = v
    for prop, (_old, new) in event.modified_properties.items():
        new = new.strip().strip('"[]')
        if not new:
            continue
        if prop.endswith("deviceostype"):
            facts.setdefault("os", new)
        elif prop.endswith("devicetrusttype"):
            facts.setdefault("trust_type", new)
        elif prop.endswith(".deviceid") or prop == "deviceid":
            facts.setdefault("device_id", new)
        elif prop == "displayname":
            facts.setdefault("name", new)
    return facts


class DefenseDeviceRegistration(Detector):
    meta = DetectorMeta(
        id="defense_device_registration",
        title="Device registered for a user",
        description=(
            "A device was registered or joined to Entra ID and given a registered owner or user; raised when the user "
            "had a risky sign-in within hours, the persistence step that turns a phished session into a Primary "
            "Refresh Token and a device that satisfies Conditional Access."
        ),
        category=Category.DEFENSE_EVASION,
        severity=Severity.LOW,
        mitre=("T1098.005",),
        dedup_window=timedelta(hours=24),
        needs=(Need.DIRECTORY, Need.RISKY_SIGNIN),
        operations=REGISTER_OPS | OWNER_OPS,
        runbook=(
            "1. Open the device in Entra ID > Devices (name, OS, trust type, registration time) and compare it with the "
            "user's known devices. 2. Call the user on a known number: did they just set up a new laptop or phone? "
            "3. If not: delete or disable the device (Remove-MgDevice), revoke the user's sessions, reset the password, "
            "review MFA methods registered the same day, and look for sign-ins from the device id afterwards."
        ),
        reference="https://www.microsoft.com/en-us/security/blog/2022/01/26/evolved-phishing-device-registration-trick-adds-to-phishers-toolbox-for-victims-without-mfa/",
        false_positives=(
            "a user enrolling a new laptop or phone (Autopilot, Intune or a personal device) from a network new to "
            "them, or within hours of a risky sign-in",
        ),
    )

    def detect(self, event: Event, ctx: DetectionContext) -> Iterable[Finding]:
        if not event.succeeded:
            return ()
        device_oid, name = _device_ref(event)
        facts = _device_facts(event)
        if name:
            facts.setdefault("name", name)
        devices = ctx.tenant_state(SECTION).setdefault("d", {})
        if event.op in REGISTER_OPS:
            if device_oid:
                devices[device_oid] = [event.time, facts, event.record_id]
                for k in [k for k, v in devices.items() if event.time - float(v[0]) > DEVICE_MEMORY_S]:
                    devices.pop(k)
                while len(devices) > MAX_DEVICES:
                    devices.pop(min(devices, key=lambda k: float(devices[k][0])))
            if event.upn is None:
                return ()  # the service registered it: the owner record names the user
        evidence: list[str] = []
        known = devices.get(device_oid or "")
        if isinstance(known, list) and len(known) == 3 and event.op in OWNER_OPS:
            known_facts: dict[str, Any] = known[1] if isinstance(known[1], dict) else {}
            facts = {**{k: str(v) for k, v in known_facts.items()}, **facts}
            evidence.append(str(known[2]))
        evidence.append(event.record_id)
        if event.user_key is None:
            return ()
        risk = risk_of(ctx, event, within_s=RISK_WINDOW_S)
        if risk is None and (event.ip is None or familiar_network(ctx, event)):
            return ()  # a new laptop or phone set up from the user's own network, no risky sign-in before
        severity = raise_for_risk(self.meta.severity, risk, steps=2)
        shown = facts.get("name") or device_oid or "a device"
        described = ", ".join(facts[k] for k in ("os", "trust_type") if k in facts)
        summary = f"Device {shown}" + (f" ({described})" if described else "") + f" registered for {event.user_display}"
        return (
            self.finding(
                event,
                summary=summary + risk_note(risk),
                severity=severity,
                dedup_key=f"{event.user_key}|{device_oid or shown}",
                evidence=evidence,
                context={
                    "device_object_id": device_oid,
                    "device_id": facts.get("device_id"),
                    "device_name": facts.get("name"),
                    "os": facts.get("os"),
                    "trust_type": facts.get("trust_type"),
                    "operation": event.record.Operation,
                    "risk": risk_context(risk),
                },
            ),
        )
