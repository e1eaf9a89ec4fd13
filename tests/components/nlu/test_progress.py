"""The training progress: a bar with an ETA on a terminal, plain lines in a CI log."""

import io

from components.nlu.progress import TrainingProgress, format_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(progress: TrainingProgress, clock: Clock, epochs: int, steps: int, seconds: float) -> None:
    progress.start(epochs, steps)
    for epoch in range(1, epochs + 1):
        for _ in range(steps):
            clock.now += seconds
            progress.step(1.0 / epoch)
        progress.epoch_end(epoch, 1.0 / epoch)
    progress.close()


def test_durations_read_as_people_say_them():
    assert format_seconds(0.4) == "0 s"
    assert format_seconds(42) == "42 s"
    assert format_seconds(185) == "3 min 05 s"
    assert format_seconds(3720) == "1 h 02 min"
    assert format_seconds(-3) == "0 s"


def test_a_log_gets_a_start_line_a_line_per_interval_with_the_time_left_and_an_end_line():
    out, clock = io.StringIO(), Clock()
    progress = TrainingProgress(stream=out, interval=15, clock=clock)
    run(progress, clock, epochs=10, steps=4, seconds=2.0)  # 8 s per epoch, 80 s in all
    assert "\r" not in out.getvalue()  # no redrawn bar in a log
    lines = out.getvalue().splitlines()
    assert lines[0] == "[kefu] intent/entity model: training, 40 steps (10 epochs × 4)"
    # every 15 s, mid-epoch too: a slow epoch leaves no silent minutes
    assert lines[1] == (
        "[kefu] intent/entity model: epoch 2/10, step 8/40 (20%), loss=0.500, "
        "16 s elapsed, ~1 min 04 s left"
    )
    assert [line.split(", ")[1] for line in lines[1:]] == [
        "step 8/40 (20%)",
        "step 16/40 (40%)",
        "step 24/40 (60%)",
        "step 32/40 (80%)",
        "step 40/40 (100%)",
    ]
    assert lines[-1] == (
        "[kefu] intent/entity model: epoch 10/10, step 40/40 (100%), loss=0.100, 1 min 20 s, done"
    )


def test_a_terminal_gets_one_bar_over_all_steps_with_an_eta_epoch_and_loss():
    out, clock = Terminal(), Clock()
    progress = TrainingProgress(stream=out, clock=clock)
    run(progress, clock, epochs=3, steps=5, seconds=0.0)
    text = out.getvalue()
    assert "\r" in text  # redrawn in place
    final = text.rstrip("\n").split("\r")[-1]
    assert final.startswith("[kefu] intent/entity model: 100%")
    assert "15/15" in final and "<00:00" in final  # elapsed<left
    assert "epoch=3/3, loss=0.333" in final
    assert "[kefu] intent/entity model: epoch" not in text  # no plain lines as well


def test_the_bar_is_closed_when_training_fails():
    out = Terminal()
    progress = TrainingProgress(stream=out)
    progress.start(2, 3)
    progress.step(0.5)
    progress.close()
    progress.close()  # idempotent
    assert out.getvalue().endswith("\n")  # the terminal's next line starts clean
