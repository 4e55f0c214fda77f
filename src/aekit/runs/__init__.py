"""Run directories: train into one, resume one, load one back; the files and formats (:mod:`~aekit.runs.layout`)."""

from aekit.runs.run import Run, load_run, resume, train

__all__ = ["Run", "load_run", "resume", "train"]
