# One image for every Python service of the stack (api, code-location, dagster-webserver,
# dagster-daemon, migrate); docker-compose.yml picks the command. Dependencies come from
# pyproject.toml only — the one place versions are pinned.
FROM python:3.11.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    PAYREPORTS_STATE_DIR=/var/lib/payreports

# WeasyPrint (PDF reports) needs Pango/HarfBuzz and at least one font at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/payreports
COPY pyproject.toml README.md ./
COPY exports ./exports
COPY orchestration ./orchestration
COPY api ./api
COPY cli ./cli
COPY dbt_project ./dbt_project
COPY dagster.yaml workspace.yaml workspace.production.yaml ./
# Editable on purpose: the code finds dagster.yaml and dbt_project/ relative to the source tree
# (exports.settings.REPO_ROOT), which a site-packages install would not have beside it.
RUN pip install -e .

RUN useradd --system --uid 10001 --home-dir /var/lib/payreports payreports \
    && mkdir -p "$DAGSTER_HOME" "$PAYREPORTS_STATE_DIR" \
    && cp dagster.yaml "$DAGSTER_HOME/dagster.yaml" \
    && chown -R payreports "$DAGSTER_HOME" "$PAYREPORTS_STATE_DIR"
USER payreports

EXPOSE 8000 3000 4000
CMD ["uvicorn", "--factory", "api.app:app_factory", "--host", "0.0.0.0", "--port", "8000"]
