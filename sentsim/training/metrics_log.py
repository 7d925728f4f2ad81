"""The training log: JSON lines in ``metrics.jsonl``, and TensorBoard scalars when it is installed."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from sentsim.evaluation.report import json_safe
from sentsim.storage.atomic import write_text_atomic

logger = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Appends one JSON object per record to ``folder/metrics.jsonl``; ``folder=None`` only logs.

    A run that goes on from ``start_step`` (a resume, or a restart at 0) first forgets what an
    earlier attempt logged past it, in ``metrics.jsonl`` and in TensorBoard, so each step shows once.
    """

    def __init__(self, folder: Path | None, start_step: int | None = None) -> None:
        self.folder = folder
        self._tensorboard = None
        if folder is None:
            return
        if start_step is not None:
            self.drop_after(start_step)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.debug("tensorboard is not installed; metrics go to %s only", METRICS_FILE)
            return
        events = folder / "tensorboard"
        if start_step == 0 and events.is_dir():
            # a run started again: every earlier event is of the failed attempt. Removed, not purged:
            # purge_step relies on file names sorting by time, which two writers of one second break
            shutil.rmtree(events)
        earlier = start_step is not None and events.is_dir() and any(events.iterdir())
        # purge_step hides the earlier attempt's events at steps >= start_step + 1 (logged steps start at 1)
        self._tensorboard = SummaryWriter(str(events), purge_step=start_step + 1 if earlier else None)

    def log(self, step: int, record: dict) -> None:
        record = {"step": step, **record}
        logger.info("%s", record)
        if self.folder is None:
            return
        with open(self.folder / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(json_safe(record)) + "\n")  # strict JSON: NaN and infinity as null
        if self._tensorboard is not None:
            scalars = {k: v for k, v in record.items() if k != "step" and isinstance(v, (int, float))}
            scalars |= {f"eval/{k}": v for k, v in record.get("eval", {}).items() if isinstance(v, (int, float))}
            for name, value in scalars.items():
                self._tensorboard.add_scalar(name, value, step)
            self._tensorboard.flush()

    def drop_after(self, step: int) -> None:
        """Forget the records past ``step`` (a resumed run logs those steps again)."""
        path = self.folder / METRICS_FILE if self.folder is not None else None
        if path is None or not path.exists():
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if (logged := _step(line)) is not None and logged <= step]
        if len(kept) != len(lines):
            write_text_atomic(path, "".join(line if line.endswith("\n") else line + "\n" for line in kept))

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


def _step(line: str) -> int | None:
    """The step of one record, or None for a line a crash cut short."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record.get("step", 0) if isinstance(record, dict) else None
