"""m365-itdr Function App: a wiring diagram. Each body is one call into ``shared.handlers``.

poll_content (timer) ─┐
o365_webhook (HTTP) ──┴─> [content] -> process_content -> [records] -> enrich_records
    -> [detect] -> detect_records -> [alerts] -> deliver_alerts -> partner Logic App
                                  └─> [remediation] -> remediate -> Microsoft Graph
feed_health, refresh_intel, weekly_report (timers); admin_tenants (HTTP)
"""

from __future__ import annotations

import azure.functions as func

from shared import handlers
from shared.app import services
from shared.platform import names

app = func.FunctionApp()
SB = "ServiceBusConnection"


def _inbound(queue: str, msg: func.ServiceBusMessage) -> handlers.Inbound:
    return handlers.Inbound(
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
    handlers.poll_content(services())


@app.route(route="o365/webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def o365_webhook(req: func.HttpRequest) -> func.HttpResponse:
    return _http(handlers.o365_webhook(services(), headers=dict(req.headers), body=req.get_body()))


@app.route(route="admin/tenants", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def admin_tenants(req: func.HttpRequest) -> func.HttpResponse:
    return _http(handlers.admin_tenants(services(), method=req.method, headers=dict(req.headers), body=req.get_body()))


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_CONTENT, connection=SB)
def process_content(msg: func.ServiceBusMessage) -> None:
    handlers.process_content(services(), _inbound(names.QUEUE_CONTENT, msg))


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_RECORDS, connection=SB, is_sessions_enabled=True)
def enrich_records(msg: func.ServiceBusMessage) -> None:
    handlers.enrich_records(services(), _inbound(names.QUEUE_RECORDS, msg))


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_DETECT, connection=SB, is_sessions_enabled=True)
def detect_records(msg: func.ServiceBusMessage) -> None:
    handlers.detect_records(services(), _inbound(names.QUEUE_DETECT, msg))


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_ALERTS, connection=SB)
def deliver_alerts(msg: func.ServiceBusMessage) -> None:
    handlers.deliver_alerts(services(), _inbound(names.QUEUE_ALERTS, msg))


@app.service_bus_queue_trigger(arg_name="msg", queue_name=names.QUEUE_REMEDIATION, connection=SB)
def remediate(msg: func.ServiceBusMessage) -> None:
    handlers.remediate(services(), _inbound(names.QUEUE_REMEDIATION, msg))


@app.timer_trigger(schedule="%ITDR_FEED_HEALTH_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def feed_health(timer: func.TimerRequest) -> None:
    handlers.feed_health(services())


@app.timer_trigger(schedule="%ITDR_INTEL_REFRESH_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def refresh_intel(timer: func.TimerRequest) -> None:
    handlers.refresh_intel(services())


@app.timer_trigger(schedule="%ITDR_WEEKLY_REPORT_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def weekly_report(timer: func.TimerRequest) -> None:
    handlers.weekly_report(services())
