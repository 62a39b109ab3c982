"""``/metrics`` with N workers: every worker's figures, whichever worker the scrape reaches.

Each worker keeps its own registry (its counters, its gauges read when scraped). It publishes a
snapshot of it to a folder the supervisor made, once a second; a scrape answered by any worker
returns its own figures, read at that moment, beside the other workers' latest snapshots (at most
``PUBLISH_SECONDS`` old), every series labelled ``worker="<index>"``. The sum over ``worker`` is the
service's figure; a restarted worker's counters start again at 0, as after a restart of one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger("media_mgr.supervisor")

PUBLISH_SECONDS = 1.0
SUFFIX = ".metrics.json"


def snapshot_path(folder: Path, index: int) -> Path:
    return folder / f"{index}{SUFFIX}"


class WorkerRegistry(CollectorRegistry):
    """What a worker's ``Metrics.registry`` becomes: metrics register in ``own``; ``collect`` (what
    ``/metrics`` serves) is every worker's figures, labelled by worker."""

    def __init__(self, own: CollectorRegistry, folder: Path, index: int) -> None:
        super().__init__(auto_describe=False)
        self.own = own
        self.folder = folder
        self.index = index

    def register(self, collector: Collector) -> None:
        self.own.register(collector)

    def unregister(self, collector: Collector) -> None:
        self.own.unregister(collector)

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        _add(merged, self.own.collect(), self.index)
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            index = int(path.name.split(".", 1)[0])
            if index == self.index:
                continue
            try:
                families = [_family(entry) for entry in json.loads(path.read_text())]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # gone with its worker, or being replaced: its figures come back next scrape
            _add(merged, families, index)
        yield from merged.values()

    def publish(self) -> None:
        """Write this worker's snapshot (replacing the last one at once: no reader sees half)."""
        body = [_entry(family) for family in self.own.collect()]
        target = snapshot_path(self.folder, self.index)
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_text(json.dumps(body))
        tmp.replace(target)

    async def keep_publishing(self) -> None:
        warned = False
        while True:
            try:
                self.publish()
            except OSError as exc:
                if not warned:
                    log.warning("metrics snapshot not written", extra={"error": str(exc)})
                    warned = True
            await asyncio.sleep(PUBLISH_SECONDS)


def remove_snapshot(folder: Path, index: int) -> None:
    """A dead worker's figures leave with it (its successor starts from 0)."""
    with contextlib.suppress(FileNotFoundError):
        snapshot_path(folder, index).unlink()


def _add(merged: dict[str, Metric], families: Iterable[Metric], index: int) -> None:
    worker = str(index)
    for family in families:
        into = merged.get(family.name)
        if into is None:
            into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
        for sample in family.samples:
            into.add_sample(sample.name, {**sample.labels, "worker": worker}, sample.value, sample.timestamp)


def _entry(family: Metric) -> dict[str, Any]:
    samples = [[s.name, s.labels, s.value, s.timestamp] for s in family.samples]
    return {"name": family.name, "doc": family.documentation, "type": family.type, "unit": family.unit,
            "samples": samples}  # fmt: skip


def _family(entry: dict[str, Any]) -> Metric:
    family = Metric(entry["name"], entry["doc"], entry["type"], entry["unit"])
    for name, labels, value, timestamp in entry["samples"]:
        family.add_sample(name, labels, value, timestamp)
    return family
