"""Report requests: the store (app Postgres), processing of one request, and retention.

`store` holds every SQL statement on report_requests/api_keys; `processing.process_request`
turns a pending request into a stored file; `retention.expire_reports` deletes old files.
"""
