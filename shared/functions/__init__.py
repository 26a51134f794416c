"""The bodies of the Function App's functions that compose several stages, one module per function.

``function_app.py`` calls each body directly: the ingest bodies live in ``shared.ingest`` (poll, webhook,
admin API, content, feed health), the intel refresh in ``shared.enrich.feeds``; the ones here join
enrichment, detection, alerts and remediation. :mod:`.fate` decides a Service Bus message's fate.
"""
