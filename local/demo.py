"""`make demo`: the whole pipeline on this machine, offline, with the code that runs in AWS.

1. An AWS emulator (moto's server on 127.0.0.1) with the stack's bucket, queues, table and topic,
   created from the same `PipelineConfig` as the Pulumi components (`local/emulator.py`).
2. The bundled portal snapshot served on 127.0.0.1 by the Socrata-compatible server the tests use
   (`local/portal.py`), or a live portal with `--portal`.
3. The harvester run as Batch runs it: `container/main.py` in a subprocess with the job
   definition's environment, pointed at the emulator and the portal.
4. The metadata Lambda fed by the queue as the event source mapping does it, and the criteria
   Lambda fed by the topic as SNS does it (`local/delivery.py`).
5. A table on the terminal and `out/report.html`; exit status 0 only when every dataset went through.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from components.config import ROOT, ConfigError, PipelineConfig
from container.harvest import FAILED, REJECTED  # REJECTED: inventory rows the selection leaves out
from contract import JobEnv, criteria_key, is_dataset_id
from handlers.quality import OBJECT_MISSING
from local.delivery import Invocation, SnsAsyncInvoker, SqsEventSourceMapping
from local.emulator import REGION, LocalAws, StackResources
from local.report import DatasetOutcome, terminal_table, write_html

SNAPSHOT = ROOT / "local" / "snapshot"
LIVE_PORTAL_DEFAULT_LIMIT = 5
HARVESTER = ROOT / "container" / "main.py"


PIPED_WIDTH = 120  # columns of the table when stdout is not a terminal: the names fit on a line


@dataclass(frozen=True)
class DemoOptions:
    portal: str | None = None  # None: the bundled snapshot
    limit: int | None = None
    ids: tuple[str, ...] = ()
    out: Path = ROOT / "out"
    keep: bool = False
    stack: str = "dev"
    extra_job_env: tuple[tuple[str, str], ...] = ()


@dataclass
class DemoResult:
    outcomes: list[DatasetOutcome]
    report: Path
    harvest_exit_code: int
    metadata_dead_letters: list[dict]
    criteria_dead_letters: list[dict]
    rejected: list[dict]  # inventory rows the selection rules left out, with the reason

    @property
    def ok(self) -> bool:
        return bool(self.outcomes) and all(o.ok for o in self.outcomes)


def parse_args(argv: list[str] | None) -> DemoOptions:
    parser = argparse.ArgumentParser(
        prog="make demo ARGS=...  (or python -m local.demo)",
        description="Run the ARTI4207 pipeline end to end on this machine: AWS emulator, portal "
                    "snapshot, the Batch harvester, both Lambdas, and a report.")
    parser.add_argument("--portal", metavar="URL",
                        help="harvest this Socrata portal instead of the bundled snapshot "
                             "(e.g. https://www.datos.gov.co; needs internet)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="datasets to select from the inventory (default: the stack's datasetLimit; "
                             f"{LIVE_PORTAL_DEFAULT_LIMIT} with --portal)")
    parser.add_argument("--ids", metavar="A,B", help="harvest exactly these dataset ids")
    parser.add_argument("--out", type=Path, default=ROOT / "out", help="folder for the report and logs")
    parser.add_argument("--keep", action="store_true",
                        help="leave the emulator running and print how to look inside with `aws`")
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml settings to use")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 0:
        parser.error("--limit must be 0 (every eligible dataset) or more")
    if args.portal and args.limit is None and not args.ids:
        # The emulator keeps objects in memory and a live portal has multi-GB datasets.
        args.limit = LIVE_PORTAL_DEFAULT_LIMIT
    try:
        PipelineConfig.from_stack_file(args.stack, ROOT)  # run() loads it again; here a bad one is a usage error
    except FileNotFoundError:
        parser.error(f"--stack: there is no Pulumi.{args.stack}.yaml in {ROOT} (a stack whose settings are all "
                     "defaults needs one too: copy Pulumi.dev.yaml)")
    except ConfigError as error:
        parser.error(f"--stack: Pulumi.{args.stack}.yaml: {error}")
    ids = tuple(i.strip() for i in (args.ids or "").split(",") if i.strip())
    bad = [i for i in ids if not is_dataset_id(i)]
    if bad:
        parser.error(f"--ids: not Socrata dataset ids: {', '.join(bad)}")
    return DemoOptions(portal=args.portal, limit=args.limit, ids=ids, out=args.out, keep=args.keep,
                       stack=args.stack)


@contextlib.contextmanager
def portal_url(options: DemoOptions) -> Iterator[str]:
    if options.portal:
        yield options.portal
        return
    from local.portal import PortalServer, load_snapshot

    with PortalServer(load_snapshot(SNAPSHOT)) as server:
        yield server.url


def run_harvester(aws: LocalAws, config: PipelineConfig, resources: StackResources, portal: str,
                  options: DemoOptions, log_path: Path, console: Console) -> tuple[int, dict]:
    """The job's entry point in a subprocess, with the environment its job definition sets; with
    `shards` > 1, one child per array index, one after the other, as Batch would run the array
    (their summaries merged: the first failing exit code, every dataset once)."""
    env = {**os.environ, **aws.environment,
           **config.job_environment(bucket=resources.bucket, queue_url=resources.queue_url)}
    env[JobEnv.SODA_DOMAIN] = portal
    if options.limit is not None:
        env[JobEnv.DATASET_LIMIT] = str(options.limit)
    if options.ids:
        env[JobEnv.DATASET_IDS] = ",".join(options.ids)
    env.update(dict(options.extra_job_env))
    children = [{}] if config.shards == 1 else [{JobEnv.ARRAY_INDEX: str(i)} for i in range(config.shards)]
    exit_code, summaries = 0, []
    with log_path.open("w", encoding="utf-8") as log, _progress(console) as progress:
        task = progress.add_task("harvester (Batch job)", total=None)
        selected = 0
        for child in children:
            summary: dict = {}
            process = subprocess.Popen([sys.executable, str(HARVESTER)], env={**env, **child}, cwd=ROOT,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                if match := SELECTED_LINE.search(line):
                    selected += int(match.group(1))
                    progress.update(task, total=selected)
                elif DONE_LINE.search(line):
                    progress.advance(task)
                elif (parsed := parse_summary_line(line)) is not None:
                    summary = parsed
            code = process.wait()
            exit_code = exit_code or code  # the first failure (a signal's is negative: not max())
            summaries.append({**summary, "process_exit_code": code})
    return exit_code, merge_summaries(summaries)


def exit_problem(who: str, summary: dict, exit_code: int) -> str | None:
    """Why a harvester run is a failure of the job itself, or None: it crashed (a traceback exits 1
    too) or was killed before its summary, or its exit code is not the one its summary gives."""
    if "exit_code" not in summary:
        return f"{who} exited with {exit_code} without its summary (see out/harvest.log)"
    if summary["exit_code"] != exit_code:
        return f"{who} exited with {exit_code} after a summary saying {summary['exit_code']} (see out/harvest.log)"
    return None


def merge_summaries(summaries: list[dict]) -> dict:
    """One summary of an array's children: each dataset once, each rejected inventory row once (every
    child reports them all), the counts recomputed, and `job_failures` naming each child that crashed
    before its summary or exited otherwise than its summary said (its datasets are missing)."""
    if len(summaries) == 1:
        return {k: v for k, v in summaries[0].items() if k != "process_exit_code"}
    failures = [problem for index, summary in enumerate(summaries)
                if (problem := exit_problem(f"array child {index}", summary, summary["process_exit_code"]))]
    # Every child that read the inventory rejects the same rows: each row as many times as the most
    # any child reports it (two rows alike, two empty ids, stay two; a child whose inventory read
    # failed reports none). The rest once each (the shards are disjoint; a failed inventory read is
    # the same line in every child).
    rejected: Counter[tuple] = Counter()
    datasets, seen = [], set()
    for summary in summaries:
        entries = summary.get("datasets", [])
        rejected |= Counter(tuple(sorted(entry.items())) for entry in entries if entry.get("status") == REJECTED)
        for entry in entries:
            key = (entry.get("id"), entry.get("status"), entry.get("reason"))
            if entry.get("status") != REJECTED and key not in seen:
                seen.add(key)
                datasets.append(entry)
    datasets += [dict(row) for row in rejected.elements()]
    statuses: dict = next((summary["counts"] for summary in summaries if summary.get("counts")), {})  # a crashed child has none
    counts = {status: sum(entry.get("status") == status for entry in datasets) for status in statuses}
    return {"counts": counts, "datasets": datasets, "job_failures": failures,
            "exit_code": max((summary.get("exit_code", 1) for summary in summaries), default=1)}


# The harvester's log lines (container/harvest.py) that move the progress bar; the outcome itself
# is read from the summary line, so a change of wording only stills the bar.
SELECTED_LINE = re.compile(r" (\d+) datasets to harvest")
DONE_LINE = re.compile(r" [a-z0-9]{4}-[a-z0-9]{4}: (harvested|unchanged|stored but never announced|failed)")


def _progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description:<24}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=console)


def parse_summary_line(line: str) -> dict | None:
    """The harvester ends with one JSON line `{"summary": {...}}` (see container/main.py)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    return data.get("summary") if isinstance(data, dict) and isinstance(data.get("summary"), dict) else None


def deliver(mapping: SqsEventSourceMapping | SnsAsyncInvoker, label: str, total: int,
            console: Console) -> list[Invocation]:
    invocations = []
    with _progress(console) as progress:
        task = progress.add_task(label, total=total or None)
        for invocation in mapping.drain():
            invocations.append(invocation)
            progress.advance(task, len(invocation.record_ids) - len(invocation.failed_ids))
        done = progress.tasks[0].completed
        progress.update(task, total=done, completed=done)
    return invocations


def run(options: DemoOptions, console: Console | None = None) -> DemoResult:
    """The demo as `make demo` runs it: its own emulator and portal, stopped at the end."""
    console = console or Console(stderr=True)
    config = PipelineConfig.from_stack_file(options.stack, ROOT)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the emulator's request log
    with LocalAws(config) as aws, portal_url(options) as portal:
        result = run_pipeline(aws, portal, options, console)
        if options.keep:
            show(result)
            print_keep_instructions(aws, console)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return result


def run_pipeline(aws: LocalAws, portal: str, options: DemoOptions, console: Console) -> DemoResult:
    """One harvest and everything downstream of it, against a running emulator and portal."""
    config, resources = aws.config, aws.resources
    assert resources is not None
    options.out.mkdir(parents=True, exist_ok=True)
    console.print(f"AWS emulator at {aws.endpoint}; portal at {portal}")
    sqs, sns = aws.client("sqs"), aws.client("sns")
    metadata, criteria = load_handlers(config, resources)
    with logs_to(options.out / "lambda.log", metadata, criteria):
        # Subscribed before anything is published, as the stack's subscription is.
        criteria_delivery = SnsAsyncInvoker(
            sqs, sns, resources.topic_arn, criteria.handler,
            function_name=config.criteria_function_name,
            retry_attempts=config.criteria_retry_attempts,
            dead_letter_queue_url=resources.criteria_dead_letter_queue_url, region=REGION)
        exit_code, summary = run_harvester(aws, config, resources, portal, options,
                                           options.out / "harvest.log", console)
        console.print(f"harvester exited with {exit_code}: "
                      + ", ".join(f"{k} {v}" for k, v in summary.get("counts", {}).items()))
        metadata_delivery = SqsEventSourceMapping(
            sqs, resources.queue_url, resources.queue_arn, metadata.handler,
            function_name=config.metadata_function_name, batch_size=config.batch_size, region=REGION)
        processed = deliver(metadata_delivery, "metadata Lambda (SQS)", metadata_delivery.pending(), console)
        # Each processed record publishes one notification (a redelivered duplicate does not).
        deliver(criteria_delivery, "criteria Lambda (SNS)",
                sum(len(i.record_ids) - len(i.failed_ids) for i in processed), console)
        criteria_delivery.unsubscribe()
    metadata_dead = drain_queue(sqs, resources.dead_letter_queue_url)
    criteria_dead = drain_queue(sqs, resources.criteria_dead_letter_queue_url)
    outcomes = collect_outcomes(aws, resources, summary, exit_code, metadata_dead, criteria_dead)
    rejected = [entry for entry in summary.get("datasets", []) if entry.get("status") == REJECTED]
    report = write_html(outcomes, options.out / "report.html", portal=portal, endpoint=aws.endpoint,
                        rejected=rejected)
    return DemoResult(outcomes, report, exit_code, metadata_dead, criteria_dead, rejected)


def load_handlers(config: PipelineConfig, resources: StackResources) -> tuple[Any, Any]:
    """Import the Lambda modules with the environment their functions get in AWS."""
    import importlib

    modules = []
    for name, environment in (
        ("handlers.criteria", config.criteria_environment(bucket=resources.bucket, table=resources.table)),
        ("handlers.metadata", config.metadata_environment(bucket=resources.bucket, table=resources.table,
                                                          topic_arn=resources.topic_arn)),
    ):
        os.environ.update(environment)  # read at import (service name) and at each call
        modules.append(importlib.import_module(name))
    from handlers import clients

    clients.reset()  # boto3 clients of an earlier emulator must not be reused
    criteria, metadata = modules
    return metadata, criteria


@contextlib.contextmanager
def logs_to(path: Path, *modules: Any) -> Iterator[None]:
    """Powertools logs JSON to stdout: send it to a file, keep the terminal for progress."""
    handlers = [module.logger.registered_handler for module in modules]
    previous = [handler.stream for handler in handlers]
    with path.open("a", encoding="utf-8") as stream:
        # Assigned, not setStream(): that flushes the old stream, which a caller may have closed.
        for handler in handlers:
            handler.stream = stream
        try:
            yield
        finally:
            for handler, old in zip(handlers, previous):
                handler.stream = old


def drain_queue(sqs: Any, url: str) -> list[dict]:
    """Every message of a dead-letter queue, left in place for people to inspect: each is hidden
    while the queue is walked (received with visibility 0, the same first ten would come back
    every time), then made visible again."""
    bodies: dict[str, dict] = {}
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                          WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", []):
        bodies.update({m["MessageId"]: m for m in messages})
    for message in bodies.values():
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return list(bodies.values())


def _dead_letter_id(message: dict) -> tuple[str, str]:
    """The dataset id a dead letter is about, and why it is there."""
    try:
        body = json.loads(message["Body"])
    except json.JSONDecodeError:
        return "", f"unparseable message in the metadata DLQ: {message['Body'][:80]!r}"
    if isinstance(body, dict) and "requestPayload" in body:  # criteria on-failure record
        try:
            inner = json.loads(body["requestPayload"]["Records"][0]["Sns"]["Message"])
            dataset_id = inner.get("ID", "")
        except (KeyError, IndexError, TypeError, json.JSONDecodeError):
            dataset_id = ""
        error = body.get("responsePayload", {}).get("errorMessage", "")
        return dataset_id, f"criteria Lambda failed after retries, in its DLQ: {error}"
    receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
    dataset_id = body.get("ID", "") if isinstance(body, dict) else ""
    return dataset_id, f"metadata Lambda failed {receives} receives, message in the DLQ"


def collect_outcomes(aws: LocalAws, resources: StackResources, summary: dict, exit_code: int,
                     metadata_dead: list[dict], criteria_dead: list[dict]) -> list[DatasetOutcome]:
    outcomes: dict[str, DatasetOutcome] = {}

    def outcome(dataset_id: str) -> DatasetOutcome:
        return outcomes.setdefault(dataset_id, DatasetOutcome(id=dataset_id))

    for entry in summary.get("datasets", []):
        if entry.get("status") == REJECTED:
            continue  # not selected: listed apart in the report, not a dataset of this run
        item = outcome(entry["id"])
        item.name = entry.get("name", "") or item.name
        item.harvest = entry.get("status", "")
        if entry.get("status") == FAILED:
            item.failures.append(f"harvest failed: {entry.get('reason', 'unknown reason')}")
    if problem := exit_problem("harvester", summary, exit_code):
        outcome("job").failures.append(problem)
    for failure in summary.get("job_failures", []):  # an array child's (see merge_summaries)
        outcome("job").failures.append(failure)

    items = aws.client("dynamodb").get_paginator("scan").paginate(TableName=resources.table)
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    for page in items:
        for raw in page["Items"]:
            row = {k: deserialize(v) for k, v in raw.items()}
            if row.get("ID") not in outcomes and summary:
                continue  # an item from an earlier harvest of a dataset not selected now
            item = outcome(row["ID"])
            item.name = item.name or str(row.get("NAME", ""))
            item.rows = int(row["rows"]) if row.get("rows") is not None else None
            item.size = int(row["size"]) if row.get("size") is not None else None
            item.sha256 = str(row.get("HASH", ""))

    s3 = aws.client("s3")
    for item in outcomes.values():
        if item.harvest == FAILED or not is_dataset_id(item.id):
            continue
        try:
            report = json.loads(s3.get_object(Bucket=resources.bucket, Key=criteria_key(item.id))["Body"].read())
        except s3.exceptions.NoSuchKey:
            continue
        item.score = _number(report.get("score"))
        item.criteria = {c["name"]: _number(c["score"]) for c in report.get("criteria") or []}
        item.error_codes = list(report.get("error_codes") or [])
        if OBJECT_MISSING in (report.get("issues") or []):  # scored, but on nothing: not a success
            item.failures.append("the stored object was gone when the criteria Lambda read it")

    for message in metadata_dead + criteria_dead:
        dataset_id, reason = _dead_letter_id(message)
        outcome(dataset_id or "unknown").failures.append(reason)
    for item in outcomes.values():
        if item.harvest != "failed" and not item.failures:
            if not item.sha256:
                item.failures.append("no metadata item (not processed)")
            elif item.score is None:
                item.failures.append("no quality report (criteria not evaluated)")
    return sorted(outcomes.values(), key=lambda o: (o.ok, o.id))


def _number(value: Any) -> float:
    return round(float(value), 2) if value is not None else 0.0


def print_keep_instructions(aws: LocalAws, console: Console) -> None:
    endpoint, resources = aws.endpoint, aws.resources
    assert resources is not None
    lines = [
        f"\nThe emulator keeps running at {endpoint} (Ctrl-C to stop). Look inside with the AWS CLI:",
        f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=testing "
        f"AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={REGION}",
        f"  # the harvester's settings here: BUCKET={resources.bucket} QUEUE_URL={resources.queue_url}",
        f"  aws s3 ls s3://{resources.bucket} --recursive",
        f"  aws dynamodb scan --table-name {resources.table}",
        # AWS CLI v1 sends `aws sqs` to its own regional endpoint unless --endpoint-url is given: it
        # ignores AWS_ENDPOINT_URL for SQS (awscli/customizations/overridesslcommonname.py).
        f"  aws sqs receive-message --endpoint-url {endpoint} --queue-url {resources.dead_letter_queue_url}",
        f"  aws sqs receive-message --endpoint-url {endpoint} --queue-url {resources.criteria_dead_letter_queue_url}",
    ]
    for line in lines:  # soft wrap: commands stay on one line, ready to paste
        console.print(line, markup=False, soft_wrap=True)


def show(result: DemoResult) -> None:
    console = Console()
    if not console.is_terminal:  # a log or a pipe (CI): nothing to fit, rich would assume 80 columns
        console = Console(width=max(console.width, PIPED_WIDTH))
    console.print(terminal_table(result.outcomes))
    for entry in result.rejected:
        console.print(f"not selected: {entry['id']}: {entry.get('reason', '')}", markup=False,
                      soft_wrap=True)


def _shown_path(path: Path) -> Path:
    """`out/report.html` when under the current folder, else the absolute path."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    result = run(options, Console(stderr=True))
    if not options.keep:
        show(result)
    failed = [o for o in result.outcomes if not o.ok]
    print(f"\nReport: {_shown_path(result.report)}")
    if failed:
        print(f"{len(failed)} of {len(result.outcomes)} datasets did not go through:", file=sys.stderr)
        for o in failed:
            print(f"  {o.id}: {'; '.join(o.failures)}", file=sys.stderr)
        return 1
    if not result.outcomes:
        print("no dataset was selected", file=sys.stderr)
        return 1
    print(f"All {len(result.outcomes)} datasets went through.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
