"""One module per report family; each exposes `REPORT_TYPES`, a tuple of `ReportType`s.
`exports.reports.catalog` collects them into the registry."""
