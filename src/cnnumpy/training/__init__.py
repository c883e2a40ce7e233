"""The training workflow: loops, callbacks, checkpoints, the run of `cnnumpy train`.

- `fit` (``loop``) and `evaluate`, `predict_proba` (``evaluation``): the
  loops, reporting through callbacks (``callbacks``: `Callback`, `FitState`,
  `EarlyStopping`, `BestCheckpoint`).
- `save_checkpoint`, `load_checkpoint` (``checkpoint``): arrays in an
  ``.npz``, the rest as JSON inside it, written atomically;
  `load_trained` (``trained``) gives back a model ready to predict.
- `TrainConfig` (``config``), `train_run` (``run``), the run's data
  (``splits``: `split_validation`) and the files a run leaves
  (``artifacts``): ``cnnumpy train`` as a function.
- Faults: ``schema`` checks a checkpoint's JSON before anything is built from
  it, ``lock`` keeps one run per folder (`RunLockedError`), ``divergence``
  stops a run whose loss or weights become NaN (`DivergenceError`).
- ``plots``: the pictures of a run (matplotlib, imported when drawing).

Nothing here parses arguments or prints: the command line does.
"""

from cnnumpy.training.callbacks import BestCheckpoint, Callback, EarlyStopping, FitState
from cnnumpy.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from cnnumpy.training.config import TrainConfig, resume_config
from cnnumpy.training.divergence import DivergenceError
from cnnumpy.training.evaluation import Evaluation, evaluate, predict_proba
from cnnumpy.training.lock import RunLockedError
from cnnumpy.training.loop import fit
from cnnumpy.training.run import RunResult, train_run
from cnnumpy.training.splits import split_validation
from cnnumpy.training.trained import TrainedModel, load_trained

__all__ = [
    "BestCheckpoint",
    "Callback",
    "CheckpointError",
    "DivergenceError",
    "EarlyStopping",
    "Evaluation",
    "FitState",
    "RunLockedError",
    "RunResult",
    "TrainConfig",
    "TrainedModel",
    "evaluate",
    "fit",
    "load_checkpoint",
    "load_trained",
    "predict_proba",
    "resume_config",
    "save_checkpoint",
    "split_validation",
    "train_run",
]
