"""The code location: every domain folder under orchestration/defs plus the shared resources."""


from pathlib import Path

import dagster as dg

from orchestration.resources import shared_resources


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources=shared_resources()),
    )
