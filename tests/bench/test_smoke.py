"""`make bench` is not part of `make test` (it takes minutes and its figures are not assertions),
but the harness must keep working: the job as its image runs it, measured, with its peak RSS."""

from __future__ import annotations

from bench import harvest


def test_the_harvester_benchmark_runs_on_small_sizes():
    report = harvest.run(quick=True)
    assert "QUICK run" in report
    for dataset_id in ("benc-0020", "benc-0200"):
        assert f"| {dataset_id} |" in report
