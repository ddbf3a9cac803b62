"""Scheduled reports: templates (saved definitions with cron + timezone + relative range) and the
scheduler that turns due times into report_requests rows exactly once.

    templates.py  CRUD and validation of report_templates
    scheduler.py  schedule_due_reports(now=...) and the cron/DST arithmetic
"""

from exports.scheduling.scheduler import schedule_due_reports

__all__ = ["schedule_due_reports"]
