"""What a user watches: progress with an ETA, for the outer iterations and for evaluation networks.

On a terminal a tqdm bar; otherwise (logs, CI, `nohup`) one plain line now and then, so a log
file stays readable. Processes other than process 0 of a multi-process run show nothing.
"""
from __future__ import annotations

import sys
import time
from typing import Protocol

from tqdm import tqdm


class Progress(Protocol):
    def update(self, done: int, note: str = "") -> None: ...

    def close(self) -> None: ...


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class _Lines:
    """A line at most every `every` units of work (and at the end), with the rate so far and an ETA."""

    def __init__(self, label: str, unit: str, start: int, total: int, every: int, stream):
        self.label, self.unit, self.total, self.every, self.stream = label, unit, total, max(every, 1), stream
        self.start = self.last = start
        self.t0 = time.time()

    def update(self, done: int, note: str = "") -> None:
        if done - self.last < self.every and done != self.total:
            return
        self.last = done
        elapsed = time.time() - self.t0
        eta = elapsed / max(done - self.start, 1) * (self.total - done)
        print(f"{self.label}: {self.unit} {done}/{self.total}{' ' + note if note else ''}, "
              f"elapsed {_duration(elapsed)}, eta {_duration(eta)}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class _Bar:
    def __init__(self, label: str, unit: str, start: int, total: int):
        self._bar = tqdm(total=total, initial=start, desc=label, unit=unit, dynamic_ncols=True)

    def update(self, done: int, note: str = "") -> None:
        if note:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


class _Silent:
    def update(self, done: int, note: str = "") -> None:
        pass

    def close(self) -> None:
        pass


def progress(label: str, unit: str, start: int, total: int, every: int, visible: bool = True) -> Progress:
    """A progress display over `total` units of work, `start` of them already done; off a terminal,
    a line every `every` units."""
    if not visible:
        return _Silent()
    if sys.stderr.isatty():
        return _Bar(label, unit, start, total)
    return _Lines(label, unit, start, total, every, sys.stderr)


class EvaluationProgress:
    """Progress of N evaluation networks of E epochs each, network by network, with an ETA.

    Called as `(network, epochs_done)` from inside the compiled evaluation (see
    `dcjax.evaluate.evaluate`); networks trained together (vmapped) advance together.
    """

    def __init__(self, label: str, num_networks: int, epochs_per_network: int, visible: bool = True):
        self.epochs = max(epochs_per_network, 1)
        self.done = [0] * num_networks
        # Off a terminal: a line every 10% of the work, at most 10 per network.
        total = num_networks * self.epochs
        self._display = progress(label, "epoch", 0, total, max(total // 10, self.epochs // 10), visible)

    def __call__(self, network: int, epochs_done: int) -> None:
        if not 0 <= network < len(self.done):
            return   # a padding network of a sharded evaluation
        self.done[network] = max(self.done[network], epochs_done)
        self._display.update(sum(self.done), f"(network {network + 1}/{len(self.done)}, "
                                             f"epoch {self.done[network]}/{self.epochs})")

    def close(self) -> None:
        self._display.close()
