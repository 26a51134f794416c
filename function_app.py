"""m365-itdr Function App: a wiring diagram. Each function calls the one module that holds its body.

poll_content (timer) ─┐                     shared.ingest.poller
o365_webhook (HTTP) ──┴─> [content]         shared.ingest.webhook
    -> process_content -> [records]         shared.ingest.content
poll_signins (timer) ───> [records]         shared.ingest.signin_poller (Graph sign-in logs, Entra ID P1+)
    -> enrich_records -> [detect]           shared.functions.enrich_records
    -> detect_records -> [alerts]           shared.functions.detect_records
                      └─> [remediation]
    -> deliver_alerts -> partner Logic App  shared.functions.deliver_alerts
    -> remediate -> Microsoft Graph         shared.functions.remediate
feed_health (timer)                         shared.ingest.health
refresh_intel (timer)                       shared.enrich.feeds
weekly_report (timer)                       shared.functions.weekly_report
admin_tenants (HTTP)                        shared.ingest.onboarding
admin_tenant, admin_consent (HTTP)          shared.functions.admin_api
admin_remediation (HTTP)                    shared.functions.admin_api
consent_callback (HTTP)                     shared.functions.admin_api -> shared.ingest.consent

The services come from ``shared.app.services()``: built once per process from the app settings alone.
A Service Bus message's fate (complete, park, retry) is :mod:`shared.functions.fate`. Each function imports
its body's module when it first runs, so the worker's indexing of this file stays light (the Azure SDKs, the
detectors and the IP data load on first use; ``make bench`` measures the cold import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from shared.app import services
from shared.platform import names

if TYPE_CHECKING:
    from shared.functions.fate import Inbound

app = func.FunctionApp()
SB = "ServiceBusConnection"


def _inbound(queue: str, msg: func.ServiceBusMessage) -> Inbound:
    from shared.functions.fate import Inbound

    return Inbound(
        queue=queue,
        body=msg.get_body(),
        message_id=msg.message_id or "",
        session_id=msg.session_id,
        delivery_count=msg.delivery_count or 1,
    )


def _http(result: tuple[int, bytes]) -> func.HttpResponse:
    status, body = result
    return func.HttpResponse(body=body, status_code=status, mimetype="application/json")


@app.timer_trigger(schedule="%ITDR_POLL_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def poll_content(timer: func.TimerRequest) -> None:
    from shared.ingest import poller

    poller.poll_tenants(services())


@app.timer_trigger(schedule="%ITDR_SIGNIN_POLL_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def poll_signins(timer: func.TimerRequest) -> None:
    from shared.ingest import signin_poller

    signin_poller.poll_signins(services())


@app.route(route="o365/webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def o365_webhook(req: func.HttpRequest) -> func.HttpResponse:
    from shared.ingest import webhook

    return _http(webhook.handle_webhook(services(), headers=dict(req.headers), body=req.get_body()))


# The admin routes authenticate every request themselves (the admin key, or the operator's Entra principal):
# no function key, so an operator's workstation holds no secret.
@app.route(route="admin/tenants", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def admin_tenants(req: func.HttpRequest) -> func.HttpResponse:
    from shared.ingest import onboarding

    svc = services()
    return _http(
        onboarding.handle_admin_request(svc, method=req.method, headers=dict(req.headers), body=req.get_body())
    )


@app.route(route="admin/tenants/{tenant_id}/{action?}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def admin_tenant(req: func.HttpRequest) -> func.HttpResponse:
    from shared.functions import admin_api

    return _http(
        admin_api.handle_tenant_request(
            services(),
            method=req.method,
            tenant_id=req.route_params.get("tenant_id", ""),
            action=req.route_params.get("action"),
            headers=dict(req.headers),
            body=req.get_body(),
        )
    )


@app.route(route="admin/remediations/{tenant_id}/{key}/{action}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def admin_remediation(req: func.HttpRequest) -> func.HttpResponse:
    from shared.functions import admin_api

    params = req.route_params
    return _http(
        admin_api.handle_remediation_request(
            services(),
            method=req.method,
            tenant_id=params.get("tenant_id", ""),
            key=params.get("key", ""),
            action=params.get("action", ""),
            headers=dict(req.headers),
            body=req.get_body(),
        )
    )


@app.route(route="admin/consent", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def admin_consent(req: func.HttpRequest) -> func.HttpResponse:
    from shared.functions import admin_api

    return _http(
        admin_api.handle_consent_request(services(), method=req.method, headers=dict(req.headers), body=req.get_body())
    )


@app.route(route="onboarding/consent-callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def consent_callback(req: func.HttpRequest) -> func.HttpResponse:
    from shared.functions import admin_api

    status, page = admin_api.handle_consent_callback(services(), query=dict(req.params))
    return func.HttpResponse(
        body=page,
        status_code=status,
        mimetype="text/html",
        headers={"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'"},
    )


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_CONTENT, connection=SB)
def process_content(msg: func.ServiceBusMessage) -> None:
    from shared.functions.fate import run_message
    from shared.ingest import content

    run_message(services(), _inbound(names.QUEUE_CONTENT, msg), content.process_content_message)


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_RECORDS, connection=SB, is_sessions_enabled=True)
def enrich_records(msg: func.ServiceBusMessage) -> None:
    from shared.functions import enrich_records as body
    from shared.functions.fate import run_message

    run_message(services(), _inbound(names.QUEUE_RECORDS, msg), body.handle)


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_DETECT, connection=SB, is_sessions_enabled=True)
def detect_records(msg: func.ServiceBusMessage) -> None:
    from shared.functions import detect_records as body
    from shared.functions.fate import run_message

    run_message(services(), _inbound(names.QUEUE_DETECT, msg), body.handle)


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_ALERTS, connection=SB)
def deliver_alerts(msg: func.ServiceBusMessage) -> None:
    from shared.functions import deliver_alerts as body
    from shared.functions.fate import run_message

    run_message(services(), _inbound(names.QUEUE_ALERTS, msg), body.handle)


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_REMEDIATION, connection=SB)
def remediate(msg: func.ServiceBusMessage) -> None:
    from shared.functions import remediate as body
    from shared.functions.fate import run_message

    run_message(services(), _inbound(names.QUEUE_REMEDIATION, msg), body.handle)


@app.timer_trigger(schedule="%ITDR_FEED_HEALTH_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def feed_health(timer: func.TimerRequest) -> None:
    from shared.ingest import health

    health.check_feeds(services())


@app.timer_trigger(schedule="%ITDR_INTEL_REFRESH_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def refresh_intel(timer: func.TimerRequest) -> None:
    from shared.enrich import feeds

    svc = services()
    feeds.refresh_feeds(svc.storage, svc.settings)


@app.timer_trigger(schedule="%ITDR_WEEKLY_REPORT_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def weekly_report(timer: func.TimerRequest) -> None:
    from shared.functions import weekly_report as body

    body.run(services())
