"""Platform domain: replication assets (raw.*), dbt assets (staging + marts), their asset checks,
and the `platform_refresh` job with its daily schedule."""
