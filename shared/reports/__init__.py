"""Reports built from recorded alerts: pure functions, wired by the function app and ``itdr report``.

* :mod:`shared.reports.credentials`: the weekly compromised-credentials report (users whose password
  was right and MFA stopped the sign-in), as a model, JSON and a small HTML table.
* :mod:`shared.reports.html`: the self-contained HTML report of one tenant and period (the Jinja2
  template ``templates/report.html.j2``, autoescaped; the world map's country outlines in
  ``data/world-110m.json``, Natural Earth via world-atlas, credited in ``data/NOTICE.md``).

Modules are imported on use (``from shared.reports.credentials import build_credentials_report``), so the
package itself stays free of imports.
"""
