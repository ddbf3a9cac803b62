"""One job that only sleeps: enough to observe how the run queue schedules runs, without
touching the warehouse."""

import time

import dagster as dg


@dg.op(config_schema={"seconds": dg.Field(float, default_value=3.0)})
def hold_slot(context: dg.OpExecutionContext) -> None:
    time.sleep(context.op_config["seconds"])


@dg.job
def sleeper():
    hold_slot()


defs = dg.Definitions(jobs=[sleeper])
