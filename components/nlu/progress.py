"""Progress of a training run over epochs × optimisation steps, for people and for CI logs.

On a terminal :class:`TrainingProgress` draws one tqdm bar over all steps of all epochs, with
the elapsed time, the time left (ETA), the epoch and the running loss — the style of Rasa's own
``Epochs:`` bar (here on an 80-column terminal)::

    [kefu] intent/entity model:  37%|██▌    | 261/705 [00:25<00:42, 10.4step/s, epoch=6/15]

Where the stream is not a terminal (a CI log, a pipe) a redrawn bar would be one endless line of
carriage returns, so it writes plain lines instead: one at the start, one every ``interval``
seconds (checked after every step, so a slow epoch is no silent minutes) and one at the end::

    [kefu] intent/entity model: training, 705 steps (15 epochs × 47)
    [kefu] intent/entity model: epoch 6/15, step 261/705 (37%), loss=0.061, 25 s elapsed, ~42 s left
    [kefu] intent/entity model: epoch 15/15, step 705/705 (100%), loss=0.004, 1 min 08 s, done

It knows nothing of Rasa or torch; :func:`components.nlu.training.fit` reports to it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

#: Prefix of every line, so that wrappers (``benchmarks/nlu.py``) can pick them out of stderr.
PREFIX = "[kefu]"


class ProgressReporter(Protocol):
    """What :func:`components.nlu.training.fit` tells about its progress."""

    def start(self, epochs: int, steps_per_epoch: int) -> None:
        """Training starts: ``epochs`` passes of ``steps_per_epoch`` steps each."""

    def step(self, loss: float) -> None:
        """One optimisation step is done, with this batch loss."""

    def epoch_end(self, epoch: int, mean_loss: float) -> None:
        """Epoch ``epoch`` (1-based) is done, with this mean batch loss."""

    def close(self) -> None:
        """Training is over (also after an error)."""


def format_seconds(seconds: float) -> str:
    """A duration for people: ``42 s``, ``3 min 05 s``, ``1 h 02 min``.

    Args:
        seconds: The duration (negative counts as 0).

    Returns:
        The duration, rounded to whole seconds (minutes past an hour).
    """
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class TrainingProgress:
    """A :class:`ProgressReporter` that draws a bar on a terminal and writes lines elsewhere.

    Args:
        label: What is being trained, shown before the bar.
        stream: Where to write; ``None`` = ``sys.stderr`` (looked up when writing).
        bar: ``True`` for the tqdm bar, ``False`` for plain lines; ``None`` = a bar exactly
            when ``stream`` is a terminal.
        interval: Seconds between two plain lines (the start and end lines are always
            written).
        clock: Monotonic seconds (for tests).
    """

    def __init__(
        self,
        label: str = "intent/entity model",
        stream: TextIO | None = None,
        bar: bool | None = None,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self._stream = stream
        self._bar_wanted = bar
        self.interval = interval
        self._clock = clock
        self._bar: Any = None
        self._epochs = 0
        self._steps_per_epoch = 1
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._last_line = 0.0
        self._loss_sum = 0.0
        self._loss_count = 0

    @property
    def stream(self) -> TextIO:
        """Where the progress goes."""
        return self._stream if self._stream is not None else sys.stderr

    def start(self, epochs: int, steps_per_epoch: int) -> None:
        """Open the bar (or note the start time for the plain lines).

        Args:
            epochs: Passes over the data.
            steps_per_epoch: Optimisation steps per pass.
        """
        self._epochs = epochs
        self._steps_per_epoch = max(1, steps_per_epoch)
        self._total = max(1, epochs * steps_per_epoch)
        self._done = 0
        self._started = self._clock()
        use_bar = _is_terminal(self.stream) if self._bar_wanted is None else self._bar_wanted
        if not use_bar:
            self._last_line = self._started
            passes = f"{epochs} epoch{'s' if epochs != 1 else ''} × {self._steps_per_epoch}"
            print(
                f"{PREFIX} {self.label}: training, {self._total} steps ({passes})",
                file=self.stream,
                flush=True,
            )
            return
        from tqdm import tqdm  # a Rasa dependency; only needed on a terminal

        self._bar = tqdm(
            total=self._total,
            desc=f"{PREFIX} {self.label}",
            unit="step",
            file=self.stream,
            dynamic_ncols=True,
            mininterval=0.5,
            leave=True,
            postfix=f"epoch=1/{epochs}",
        )

    def step(self, loss: float) -> None:
        """Advance by one step; write a plain line when one is due.

        Args:
            loss: The step's batch loss (the epoch's running mean is shown).
        """
        self._done += 1
        self._loss_sum += loss
        self._loss_count += 1
        epoch = min((self._done - 1) // self._steps_per_epoch + 1, self._epochs)
        running = self._loss_sum / self._loss_count
        if self._bar is not None:
            self._bar.set_postfix_str(
                f"epoch={epoch}/{self._epochs}, loss={running:.3f}", refresh=False
            )
            self._bar.update(1)
        elif self._done < self._total and self._clock() - self._last_line >= self.interval:
            self._line(epoch, running, last=False)

    def epoch_end(self, epoch: int, mean_loss: float) -> None:
        """Note the end of an epoch; the last one writes the final plain line.

        Args:
            epoch: The epoch just finished (1-based).
            mean_loss: Its mean batch loss.
        """
        self._loss_sum, self._loss_count = 0.0, 0
        if self._bar is None and epoch >= self._epochs:
            self._line(epoch, mean_loss, last=True)

    def _line(self, epoch: int, loss: float, last: bool) -> None:
        now = self._clock()
        self._last_line = now
        elapsed = now - self._started
        line = (
            f"{PREFIX} {self.label}: epoch {epoch}/{self._epochs}, step {self._done}/"
            f"{self._total} ({100 * self._done / self._total:.0f}%), loss={loss:.3f}, "
        )
        if last:
            line += f"{format_seconds(elapsed)}, done"
        else:
            left = elapsed / max(1, self._done) * (self._total - self._done)
            line += f"{format_seconds(elapsed)} elapsed, ~{format_seconds(left)} left"
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """Close the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
