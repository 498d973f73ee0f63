"""The demo end to end: portal snapshot -> harvester subprocess -> SQS -> metadata -> SNS -> criteria."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path

import pytest
from boto3.dynamodb.types import TypeDeserializer
from rich.console import Console

from components.config import PipelineConfig
from contract import JobEnv, criteria_key, dataset_key
from local.demo import DemoOptions, main, merge_summaries, run_pipeline
from local.emulator import LocalAws
from local.portal import Fault, PortalServer, load_snapshot
from local.report import human_size
from tests.local.browser import find_chromium, render_dom

QUIET = Console(file=open("/dev/null", "w"), width=120)  # noqa: SIM115 - lives as long as the tests


def _items(aws: LocalAws) -> list[dict]:
    deserialize = TypeDeserializer().deserialize
    assert aws.resources is not None  # created on entering LocalAws
    scan = aws.client("dynamodb").scan(TableName=aws.resources.table)["Items"]
    return [{k: deserialize(v) for k, v in item.items()} for item in scan]


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory):
    """One demo run on the bundled snapshot, its emulator left up for the assertions."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    portal = load_snapshot()
    out = tmp_path_factory.mktemp("demo")
    with LocalAws(PipelineConfig.from_stack_file("dev")) as aws, PortalServer(portal) as server:
        result = run_pipeline(aws, server.url, DemoOptions(out=out), QUIET)
        yield aws, portal, result


def test_every_selected_dataset_is_stored_byte_identical_to_the_portal(snapshot_run):
    aws, portal, result = snapshot_run
    s3 = aws.client("s3")
    selected = [o.id for o in result.outcomes]
    assert selected, "the snapshot selects datasets"
    assert set(selected) <= set(portal.datasets)
    for dataset_id in selected:
        stored = s3.get_object(Bucket=aws.resources.bucket, Key=dataset_key(dataset_id))["Body"].read()
        assert stored == portal.datasets[dataset_id].data, dataset_id


def test_one_item_per_dataset_whose_hash_is_the_sha256_of_the_stored_object(snapshot_run):
    aws, _portal, result = snapshot_run
    s3 = aws.client("s3")
    items = _items(aws)
    assert sorted(i["ID"] for i in items) == sorted(o.id for o in result.outcomes)
    for item in items:
        stored = s3.get_object(Bucket=aws.resources.bucket, Key=dataset_key(item["ID"]))["Body"].read()
        assert item["HASH"] == hashlib.sha256(stored).hexdigest()


def test_one_quality_report_per_dataset_and_empty_dead_letter_queues(snapshot_run):
    aws, _portal, result = snapshot_run
    s3 = aws.client("s3")
    for outcome in result.outcomes:
        report = json.loads(s3.get_object(Bucket=aws.resources.bucket,
                                          Key=criteria_key(outcome.id))["Body"].read())
        assert 0 <= outcome.score <= 10
        assert outcome.score == pytest.approx(float(report["score"]), abs=0.01)
        assert outcome.criteria
    assert result.metadata_dead_letters == [] and result.criteria_dead_letters == []
    assert result.harvest_exit_code == 0
    assert result.ok


def test_the_report_names_every_dataset(snapshot_run):
    _aws, _portal, result = snapshot_run
    html = result.report.read_text(encoding="utf-8")
    for outcome in result.outcomes:
        assert f'id="{outcome.id}"' in html
        assert outcome.name and outcome.name.replace("&", "&amp;") in html


@pytest.mark.browser
def test_the_report_renders_in_headless_chromium_with_the_dataset_names(snapshot_run):
    chromium, why = find_chromium()
    if chromium is None:
        pytest.skip(f"no headless browser: {why}")
    _aws, _portal, result = snapshot_run
    dom = render_dom(chromium, result.report)
    assert "ARTI4207 pipeline report" in dom
    for outcome in result.outcomes:
        assert outcome.name.replace("&", "&amp;") in dom
    # The bars are laid out with their scores as widths.
    assert dom.count('class="bar-row"') >= len(result.outcomes)


def test_faults_end_to_end_and_a_rerun_only_harvests_what_is_missing(tmp_path):
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    portal = load_snapshot()
    config = PipelineConfig.from_stack_file("dev")
    with LocalAws(config) as aws, PortalServer(portal) as server:
        assert aws.resources is not None
        ids = sorted(portal.datasets)
        transient, permanent = ids[0], ids[1]
        server.faults.inject(transient, Fault.error(503, times=2))
        server.faults.inject(permanent, Fault.error(500))
        # A poison message: not the harvester's contract, so the metadata Lambda fails it every time.
        aws.client("sqs").send_message(QueueUrl=aws.resources.queue_url, MessageBody='{"ID": "../etc"}')

        # Two retries are enough for the transient fault and keep the permanent one quick.
        retries = ((JobEnv.HTTP_RETRIES, "2"),)
        first = run_pipeline(aws, server.url, DemoOptions(out=tmp_path / "first", extra_job_env=retries), QUIET)

        by_id = {o.id: o for o in first.outcomes}
        assert first.harvest_exit_code == 1
        assert by_id[transient].ok and by_id[transient].sha256
        assert server.requests[("csv", transient)] >= 3  # two 503s, then served
        assert not by_id[permanent].ok
        assert any("harvest failed" in f for f in by_id[permanent].failures)
        others = [o for o in first.outcomes if o.id not in (permanent, "../etc")]
        assert others and all(o.ok for o in others)
        assert len(first.metadata_dead_letters) == 1
        dead = first.metadata_dead_letters[0]
        assert dead["Body"] == '{"ID": "../etc"}'
        assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= config.max_receive_count
        assert not first.ok

        server.faults.clear()
        stored_before = {o.id: o.sha256 for o in others}
        csv_requests_before = {i: server.requests[("csv", i)] for i in ids}
        second = run_pipeline(aws, server.url, DemoOptions(out=tmp_path / "second", extra_job_env=retries), QUIET)

        assert second.harvest_exit_code == 0
        # Only the dataset that failed was downloaded again.
        downloaded = [i for i in ids if server.requests[("csv", i)] > csv_requests_before[i]]
        assert downloaded == [permanent]
        by_id = {o.id: o for o in second.outcomes}
        assert by_id[permanent].ok and by_id[permanent].sha256
        assert {i: by_id[i].sha256 for i in stored_before} == stored_before
        assert sorted(i["ID"] for i in _items(aws)) == sorted(o.id for o in first.outcomes if o.id != "../etc")


def test_main_rejects_bad_arguments_with_a_clear_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--ids", "gt2j-8ykr,../x"])
    assert exit_info.value.code == 2
    assert "not Socrata dataset ids: ../x" in capsys.readouterr().err


def test_main_names_a_stack_without_settings_file_or_with_a_bad_one(capsys, tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as exit_info:
        main(["--stack", "nosuch"])
    assert exit_info.value.code == 2
    assert "--stack: there is no Pulumi.nosuch.yaml" in capsys.readouterr().err

    import local.demo

    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  arti4207:batchSize: '11'\n")
    monkeypatch.setattr(local.demo, "ROOT", tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--stack", "bad"])
    assert exit_info.value.code == 2
    assert "--stack: Pulumi.bad.yaml: arti4207:batchSize must be between 1 and 10" in capsys.readouterr().err


def test_a_sharded_stack_runs_one_harvester_per_array_index_and_covers_the_selection(tmp_path):
    import dataclasses

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    portal = load_snapshot()
    config = dataclasses.replace(PipelineConfig.from_stack_file("dev"), shards=3, max_vcpus=3)
    with LocalAws(config) as aws, PortalServer(portal) as server:
        result = run_pipeline(aws, server.url, DemoOptions(out=tmp_path), QUIET)
        assert aws.resources is not None
        stored = {o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=aws.resources.bucket)["Contents"]}

    assert result.harvest_exit_code == 0 and result.ok
    selected = sorted(o.id for o in result.outcomes)
    assert len(selected) == 4 and len(set(selected)) == 4  # every dataset once, from whichever shard has it
    assert {dataset_key(i) for i in selected} <= stored
    assert [r["id"] for r in result.rejected] == ["8ffd-q6x9:0"]  # each child rejects it: reported once
    log = (tmp_path / "harvest.log").read_text()
    assert all(f"(shard {i} of 3)" in log for i in (1, 2, 3))


def test_merged_array_summaries_keep_every_rejected_row_and_each_dataset_once():
    rejected = [{"id": "", "status": "rejected", "reason": "empty id"}] * 2  # two rows alike are two rows
    children = [{"counts": {"harvested": 0, "failed": 0, "rejected": 0}, "exit_code": 0, "process_exit_code": 0,
                 "datasets": [*rejected, {"id": f"aaaa-000{i}", "status": "harvested", "reason": ""}]}
                for i in range(3)]

    merged = merge_summaries(children)

    assert merged["counts"] == {"harvested": 3, "failed": 0, "rejected": 2}
    assert sorted(d["id"] for d in merged["datasets"] if d["status"] == "harvested") == [
        "aaaa-0000", "aaaa-0001", "aaaa-0002"]
    # A child whose inventory read failed rejects nothing; whichever child comes first.
    failed_inventory = {"counts": {"harvested": 0, "failed": 1, "rejected": 0}, "exit_code": 1,
                        "process_exit_code": 1, "datasets": [{"id": "uzcf-b9dh", "status": "failed", "reason": "503"}]}
    for order in ([failed_inventory, *children], [*children, failed_inventory]):
        assert merge_summaries(order)["counts"] == {"harvested": 3, "failed": 1, "rejected": 2}


def test_a_sharded_run_whose_child_crashed_before_its_summary_is_a_failure(tmp_path, monkeypatch):
    import dataclasses

    import local.demo

    # Array child 0 dies before its summary (exit 1, as a traceback would); the others run the job.
    wrapper = tmp_path / "crashing_harvester.py"
    wrapper.write_text(f"""import os, runpy, sys
if os.environ["{JobEnv.ARRAY_INDEX}"] == "0":
    raise SystemExit("boom")
sys.argv = [{str(local.demo.HARVESTER)!r}]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
""")
    monkeypatch.setattr(local.demo, "HARVESTER", wrapper)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    config = dataclasses.replace(PipelineConfig.from_stack_file("dev"), shards=2, max_vcpus=2)
    with LocalAws(config) as aws, PortalServer(load_snapshot()) as server:
        result = run_pipeline(aws, server.url, DemoOptions(out=tmp_path / "out"), QUIET)

    assert result.harvest_exit_code == 1 and not result.ok
    [job] = [o for o in result.outcomes if o.id == "job"]
    assert job.failures == ["array child 0 exited with 1 without its summary (see out/harvest.log)"]


def test_the_hosts_aws_settings_neither_break_nor_reach_the_demo(tmp_path, monkeypatch, capsys):
    host = {"AWS_PROFILE": "nowhere", "AWS_CONFIG_FILE": str(tmp_path / "missing"),
            "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}  # a profile not here; S3 somewhere else
    for name, value in host.items():
        monkeypatch.setenv(name, value)

    assert main(["--out", str(tmp_path), "--limit", "1"]) == 0, capsys.readouterr().err
    assert {name: os.environ.get(name) for name in host} == host  # given back afterwards


def test_bundled_snapshot_is_where_the_demo_looks(tmp_path):
    from local.demo import SNAPSHOT

    assert Path(SNAPSHOT, "README.md").exists()


def test_main_runs_the_demo_and_exits_0_with_the_report_path(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert f"Report: {tmp_path / 'report.html'}" in out
    assert "All 2 datasets went through." in out
    assert (tmp_path / "harvest.log").read_text().count(": harvested ") == 2


def test_main_exits_1_naming_the_datasets_that_did_not_go_through(tmp_path, capsys, monkeypatch):
    # A portal that answers nothing: every dataset fails in the harvester, and main says which.
    monkeypatch.setenv(JobEnv.HTTP_RETRIES, "0")
    assert main(["--out", str(tmp_path), "--ids", "gt2j-8ykr", "--portal", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "did not go through" in err


def test_a_live_portal_is_harvested_a_few_datasets_at_a_time_unless_told_otherwise():
    from local.demo import LIVE_PORTAL_DEFAULT_LIMIT, parse_args

    assert parse_args(["--portal", "https://www.datos.gov.co"]).limit == LIVE_PORTAL_DEFAULT_LIMIT
    assert parse_args(["--portal", "https://www.datos.gov.co", "--limit", "50"]).limit == 50
    assert parse_args(["--portal", "https://www.datos.gov.co", "--ids", "gt2j-8ykr"]).limit is None
    assert parse_args([]).limit is None  # the snapshot: the stack's datasetLimit


def test_the_readme_shows_what_the_demo_prints(snapshot_run):
    # README.md quotes the demo's table; its rows, sizes, hashes and scores must be the real ones.
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    quoted = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 7 and len(cells[0]) == 9 and cells[0][4] == "-":
            quoted[cells[0]] = cells[1:5]
    _, _, result = snapshot_run
    printed = {o.id: [f"{o.rows:,}", human_size(o.size), o.sha256[:12], f"{o.score:.1f}/10"] for o in result.outcomes}
    assert quoted == printed


def test_a_harvester_that_ends_without_its_summary_is_a_failure_of_the_run(local_aws):
    from local.demo import collect_outcomes

    r = local_aws.resources
    crashed = collect_outcomes(local_aws, r, summary={}, exit_code=1, metadata_dead=[], criteria_dead=[])
    assert [(o.id, o.ok) for o in crashed] == [("job", False)]
    assert "without its summary" in crashed[0].failures[0]
    summary = {"datasets": [], "exit_code": 0}
    assert collect_outcomes(local_aws, r, summary=summary, exit_code=0, metadata_dead=[], criteria_dead=[]) == []
    disagreeing = collect_outcomes(local_aws, r, summary=summary, exit_code=1, metadata_dead=[], criteria_dead=[])
    assert [(o.id, o.ok) for o in disagreeing] == [("job", False)]


def test_a_report_on_an_object_gone_before_its_evaluation_is_a_failure(local_aws):
    from contract import criteria_key
    from local.demo import collect_outcomes

    r = local_aws.resources
    local_aws.client("dynamodb").put_item(TableName=r.table, Item={
        "HASH": {"S": "a" * 64}, "ID": {"S": "abcd-1234"}, "rows": {"N": "3"}, "size": {"N": "30"}})
    report = {"score": 1.5, "criteria": [], "error_codes": [], "issues": ["object_missing"]}
    local_aws.client("s3").put_object(Bucket=r.bucket, Key=criteria_key("abcd-1234"), Body=json.dumps(report))
    summary = {"datasets": [{"id": "abcd-1234", "status": "harvested"}], "exit_code": 0}
    (outcome,) = collect_outcomes(local_aws, r, summary=summary, exit_code=0, metadata_dead=[], criteria_dead=[])
    assert outcome.score == 1.5 and not outcome.ok
    assert outcome.failures == ["the stored object was gone when the criteria Lambda read it"]


def test_every_dead_letter_is_listed_and_left_in_its_queue(local_aws):
    from local.demo import drain_queue

    sqs, url = local_aws.client("sqs"), local_aws.resources.dead_letter_queue_url
    for n in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"ID": f"dead-{n:04d}"}))
    assert sorted(json.loads(m["Body"])["ID"] for m in drain_queue(sqs, url)) == [f"dead-{n:04d}" for n in range(25)]
    assert len(drain_queue(sqs, url)) == 25  # still there, visible, for people to inspect


def test_portal_text_is_escaped_in_the_html_report_and_plain_in_the_terminal(tmp_path):
    from local.report import DatasetOutcome, terminal_table, write_html

    outcome = DatasetOutcome(id="abcd-1234", name="<script>alert(1)</script> Ventas [en pesos] [/] 2024",
                             failures=["harvest failed: <img src=x onerror=alert(2)>"])
    html = write_html([outcome], tmp_path / "report.html", portal="p", endpoint="e",
                      rejected=[{"id": "<b>x</b>", "reason": "<i>draft</i>"}]).read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<b>x</b>" not in html and "<i>draft</i>" not in html
    terminal = io.StringIO()
    Console(file=terminal, width=200).print(terminal_table([outcome]))  # "[/]" as markup would raise MarkupError
    printed = terminal.getvalue()
    assert "pesos] [/] 2024" in printed and "onerror=alert(2)>" in printed  # the name wraps after "[en"


def test_keep_prints_ready_to_paste_commands_and_the_harvester_settings():
    from types import SimpleNamespace

    from rich.console import Console

    from local.demo import print_keep_instructions
    from local.emulator import StackResources

    resources = StackResources("b", "http://e/q", "arn:q", "http://e/q-dlq", "t", "arn:t", "http://e/c-dlq", "arn:c")
    console = Console(record=True, width=40)
    print_keep_instructions(SimpleNamespace(endpoint="http://127.0.0.1:1", resources=resources), console)  # type: ignore[arg-type]
    lines = console.export_text().splitlines()
    assert "  export AWS_ENDPOINT_URL=http://127.0.0.1:1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing " \
           "AWS_DEFAULT_REGION=us-east-1" in lines  # one line at any width
    assert "  # the harvester's settings here: BUCKET=b QUEUE_URL=http://e/q" in lines
    assert "  aws dynamodb scan --table-name t" in lines
    # AWS CLI v1 ignores AWS_ENDPOINT_URL for `aws sqs` (it picks SQS's regional endpoint itself).
    sqs = [line for line in lines if line.startswith("  aws sqs ")]
    assert len(sqs) == 2 and all("--endpoint-url http://127.0.0.1:1 " in line for line in sqs)


def test_an_emulator_that_fails_to_start_gives_the_host_its_aws_settings_back(monkeypatch):
    import local.emulator

    def broken(aws, config):
        raise RuntimeError("the stack's resources could not be made")

    def aws_settings() -> dict[str, str]:
        return {name: value for name, value in os.environ.items() if name.startswith("AWS_")}

    monkeypatch.setenv("AWS_PROFILE", "nowhere")
    monkeypatch.setattr(local.emulator, "create_stack_resources", broken)
    host = aws_settings()
    with pytest.raises(RuntimeError, match="could not be made"):
        with LocalAws(PipelineConfig.from_stack_file("dev")):
            pass
    assert aws_settings() == host
