"""The resumable epoch loop V and M share: batches from a deterministic source, each loss term
summed and logged by name, a stop on a non-finite loss, checkpoints inside and at the end of
every epoch, and a resumed run that continues at the batch after the last checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from worldmodels.core import checkpoint, tensorboard


@dataclass(frozen=True)
class Loop:
    """What differs between V's and M's training."""

    name: str
    """The TensorBoard prefix and the progress bar's label ("V", "M")."""
    epochs: int
    batches: int
    """Batches per epoch."""
    checkpoint_every: int
    """Batches between checkpoints inside an epoch."""
    bar_per_batch: bool = True
    """One progress bar per epoch counting batches (V), or one over the epochs (M)."""


def run_epochs(loop: Loop, directory: Path, model, optimizer,
               batches_of: Callable[[int, int], Iterable], step: Callable[..., dict],
               end_of_epoch: Callable[[int, list, dict], None], progress: bool = True) -> list:
    """Train for ``loop.epochs`` epochs, resuming from the checkpoint in ``directory``.
    ``batches_of(epoch, skip)`` yields the epoch's batches from batch ``skip`` on (each a tuple
    of ``step``'s arguments, or one argument); ``step(*batch)`` trains on one and returns its
    named losses; ``end_of_epoch(epoch, history, board)`` writes what an epoch leaves behind
    (metrics, weights, images) after its row joined ``history``. Returns the history."""
    state = checkpoint.load(directory, model, optimizer)
    if state is None:
        tensorboard.clear(directory)
        state = checkpoint.new_progress()
    board = tensorboard.Board(directory)
    history = state["history"]
    epochs = range(state["epoch"], loop.epochs)
    epoch_bar = tqdm(epochs, initial=state["epoch"], total=loop.epochs, desc=loop.name,
                     unit="epoch", disable=not progress or loop.bar_per_batch)
    for epoch in epoch_bar:
        skip = state["step"] if epoch == state["epoch"] else 0
        sums, count = (dict(state["sums"]), state["count"]) if skip else ({}, 0)
        batches = batches_of(epoch, skip)
        if loop.bar_per_batch:
            batches = tqdm(batches, total=loop.batches, initial=skip,
                           desc=f"{loop.name} epoch {epoch + 1}/{loop.epochs}",
                           disable=not progress)
        for number, batch in enumerate(batches, start=skip + 1):
            arguments = batch if isinstance(batch, tuple) else (batch,)
            losses = {key: float(value) for key, value in step(*arguments).items()}
            checkpoint.check_finite(losses, epoch + 1, number, directory)
            board.scalars(losses, epoch * loop.batches + number, prefix=f"{loop.name}/")
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            if loop.bar_per_batch:
                batches.set_postfix(loss=f"{sums['loss'] / count:.1f}")
            if number % loop.checkpoint_every == 0 and number < loop.batches:
                checkpoint.save(directory, model, optimizer, {
                    "epoch": epoch, "step": number, "sums": sums, "count": count,
                    "history": history})
        row = {"epoch": epoch + 1, **{key: value / max(count, 1) for key, value in sums.items()}}
        history.append(row)
        board.scalars({k: v for k, v in row.items() if k != "epoch"}, epoch + 1,
                      prefix=f"{loop.name}-epoch/")
        if not loop.bar_per_batch:
            epoch_bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()
                                   if k in ("loss", "mdn")})
        end_of_epoch(epoch, history, board)
        board.flush()
        checkpoint.save(directory, model, optimizer,
                        dict(checkpoint.new_progress(), epoch=epoch + 1, history=history))
    board.close()
    return history
