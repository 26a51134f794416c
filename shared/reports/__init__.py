"""Reports built from recorded alerts: pure functions, wired by the function app and ``itdr report``.

* :mod:`shared.reports.credentials`: the weekly compromised-credentials report (users whose password
  was right and MFA stopped the sign-in), as a model, JSON and a small HTML table.
* :mod:`shared.reports.html`: the self-contained HTML report of one tenant and period.

Modules are imported on use (``from shared.reports.credentials import build_credentials_report``), so the
package itself stays free of imports.
"""
