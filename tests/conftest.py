import os

# Tests run in UTC whatever the machine says (dbt-clickhouse's test split does the same), so a
# timezone bug shows up as a failure here rather than only on machines in another zone.
os.environ["TZ"] = "UTC"

pytest_plugins = [
    "tests.fixtures.services",
]
