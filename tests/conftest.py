import os

# Tests run in UTC whatever the machine says (dbt-clickhouse's test split does the same), so a
# timezone bug shows up as a failure here rather than only on machines in another zone.
os.environ["TZ"] = "UTC"

pytest_plugins = [
    "tests.fixtures.services",  # embedded Postgres, state dir
    "tests.fixtures.platform",  # demo platform replicated + marts built (chdb)
    "tests.fixtures.s3",  # SeaweedFS S3 server
    "tests.fixtures.api",  # uvicorn Report API
    "tests.fixtures.smtp",  # aiosmtpd server
    "tests.fixtures.webhooks",  # HTTP webhook receiver
]
