"""Which controls each section of a report evidences, named once for both formats.

SOC 2 (the 2017 Trust Services Criteria) and ISO/IEC 27001:2022 Annex A. A section lists the
controls an auditor would test with it; the wording of each control is the standard's short title.
"""

from __future__ import annotations

CONTROL_TITLES = {
    "CC6.1": "SOC 2 CC6.1 logical access security",
    "CC6.2": "SOC 2 CC6.2 access authorised before it is issued",
    "CC6.3": "SOC 2 CC6.3 access granted, changed and removed by role",
    "CC7.2": "SOC 2 CC7.2 monitoring for anomalies",
    "A.5.15": "ISO/IEC 27001:2022 A.5.15 access control",
    "A.5.18": "ISO/IEC 27001:2022 A.5.18 access rights",
    "A.8.2": "ISO/IEC 27001:2022 A.8.2 privileged access rights",
    "A.8.15": "ISO/IEC 27001:2022 A.8.15 logging",
    "A.8.16": "ISO/IEC 27001:2022 A.8.16 monitoring activities",
}

REQUEST_AND_APPROVALS = ("CC6.1", "CC6.2", "A.5.15", "A.5.18", "A.8.2")
TIMELINE = ("CC6.2", "CC6.3", "A.8.2", "A.8.15")
ACTIONS = ("CC7.2", "A.8.15", "A.8.16")
REVIEW = ("CC6.2", "CC6.3", "A.5.18")
INTEGRITY = ("CC7.2", "A.8.15")
GRANTS = ("CC6.1", "CC6.3", "A.5.15", "A.8.2")
APPROVALS = ("CC6.2", "A.5.18", "A.8.2")
DURATIONS = ("CC6.3", "A.8.2")
REFUSALS = ("CC6.1", "A.5.15")


def controls_line(controls: tuple[str, ...]) -> str:
    return "Evidences: " + "; ".join(CONTROL_TITLES[c] for c in controls)
