import io
import json
import logging

from exports.logging import configure_logging, log_context
from exports.settings import Settings


def test_every_line_inside_a_context_carries_the_bound_ids(tmp_path):
    stream = io.StringIO()
    handler = configure_logging(Settings(state_dir=tmp_path), json_lines=True, stream=stream)
    log = logging.getLogger("exports.requests.processing")
    try:
        log.info("before")
        with log_context(report_id="rpt_1", run_id="run-9"):
            log.info("claimed %s", "rpt_1")
            with log_context(account_id="acct_7"):
                log.warning("slow", extra={"rows": 12})
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("failed")
        log.info("after")
    finally:
        logging.getLogger().removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["before", "claimed rpt_1", "slow", "failed", "after"]
    assert "report_id" not in lines[0] and "report_id" not in lines[-1]
    for line in lines[1:4]:
        assert (line["report_id"], line["run_id"]) == ("rpt_1", "run-9")
        assert line["logger"] == "exports.requests.processing"
    assert lines[2]["account_id"] == "acct_7" and lines[2]["rows"] == 12
    assert "account_id" not in lines[3]
    assert lines[3]["level"] == "ERROR" and "ValueError: boom" in lines[3]["exc"]


def test_text_format_appends_the_bound_ids(tmp_path):
    stream = io.StringIO()
    handler = configure_logging(Settings(state_dir=tmp_path), json_lines=False, stream=stream)
    try:
        with log_context(report_id="rpt_2", run_id=None):
            logging.getLogger("x").info("hello")
    finally:
        logging.getLogger().removeHandler(handler)
    assert stream.getvalue().rstrip().endswith("hello report_id=rpt_2")
