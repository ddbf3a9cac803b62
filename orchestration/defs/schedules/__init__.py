"""Scheduled reports: the template scheduler tick and the delivery retry loop (both thin sensors
over exports.scheduling / exports.delivery)."""
