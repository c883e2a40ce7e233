"""The `Optimizer` base: parameter groups, per-parameter state, state dicts."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np

from cnnumpy.nn.parameter import Parameter
from cnnumpy.validation import check_instance, check_real


def _as_index(where: str, key: Any) -> int:
    """A parameter index from an int or from its string (JSON object keys)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    if isinstance(key, str) and key.isdecimal():
        return int(key)
    raise ValueError(
        f"`state_dict['{where}']` must index parameters by int, got {key!r}"
    )


class Optimizer:
    """Base class of the optimizers, with PyTorch's parameter groups and state.

    Parameters
    ----------
    params : iterable of Parameter or iterable of dict
        The parameters to optimize, or parameter groups: dicts with a
        ``'params'`` entry (a Parameter or a list of them) and optional
        hyperparameters that override ``defaults`` for that group.
    defaults : dict
        The default hyperparameters of every group.

    Attributes
    ----------
    param_groups : list of dict
        One dict per group: ``'params'`` (a list of Parameter) and the
        hyperparameters. Schedulers write ``'lr'`` (and ``'initial_lr'``) here.
    state : dict
        Maps a Parameter to its state dict (arrays and numbers), created on the
        first step that sees a gradient for it.

    Raises
    ------
    TypeError
        If ``params`` is a single Parameter, a set, or mixes Parameters and
        dicts; if a group or a parameter has the wrong type.
    ValueError
        If ``params`` is empty or a Parameter appears twice.

    Notes
    -----
    The base class owns the step: the closure, the loop over the groups and
    their parameters, the check of each gradient. Subclasses implement
    ``_update``, the update of one parameter, and extend ``_validate_group``;
    they list in ``_scalar_state_keys`` the state entries that are numbers
    (such as Adam's ``'step'``), every other entry being an array shaped like
    its parameter.
    """

    _scalar_state_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(check_instance(defaults, "defaults", dict, "a dict"))
        self._validate_group(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Parameter, dict[str, Any]] = {}
        # Work arrays reused across steps, so that a step allocates nothing.
        self._scratch_buffers: dict[tuple[np.dtype, int], np.ndarray] = {}

        if isinstance(params, (Parameter, np.ndarray, dict, set)) or not isinstance(
            params, Iterable
        ):
            raise TypeError(
                "`params` must be an ordered iterable of Parameter or of dicts, "
                f"got {type(params).__name__}"
            )
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("`params` must not be empty, got an empty list")
        are_dicts = [isinstance(g, dict) for g in groups]
        if all(are_dicts):
            for group in groups:
                self.add_param_group(group)
        elif not any(are_dicts):
            self.add_param_group({"params": groups})
        else:
            raise TypeError(
                "`params` must hold either only Parameters or only dicts, got a mix"
            )

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with its own hyperparameters.

        Parameters
        ----------
        param_group : dict
            ``'params'`` (a Parameter or an ordered iterable of them) and any
            hyperparameters; missing ones are taken from ``defaults``. The dict
            is copied, not kept.

        Raises
        ------
        TypeError
            If ``param_group`` is not a dict, ``'params'`` is a set or holds
            something other than a Parameter.
        ValueError
            If ``'params'`` is missing, a Parameter is already optimized, or a
            hyperparameter is invalid.
        """
        if not isinstance(param_group, dict):
            raise TypeError(
                f"`param_group` must be a dict, got {type(param_group).__name__}"
            )
        if "params" not in param_group:
            raise ValueError(
                f"`param_group` must have a 'params' key, got keys "
                f"{sorted(param_group)}"
            )
        params = param_group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, (set, np.ndarray, dict)):
            raise TypeError(
                "`param_group['params']` must be a Parameter or an ordered "
                f"iterable of them, got {type(params).__name__}"
            )
        else:
            params = list(params)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"`params` must contain only Parameter, got {type(p).__name__} "
                    f"at index {i}"
                )
            if id(p) in seen:
                raise ValueError(
                    f"`params` must not repeat a parameter, got {p!r} at index {i} "
                    "a second time (in this group or in an earlier one)"
                )
            seen.add(id(p))
        group = {**self.defaults, **param_group, "params": params}
        self._validate_group(group)
        self.param_groups.append(group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Check the hyperparameters of ``group``, normalising them in place.

        Raises TypeError or ValueError naming the offending hyperparameter.
        """
        if "lr" in group:
            check_real(group["lr"], "lr", minimum=0)

    def zero_grad(self) -> None:
        """Set the gradient of every parameter to None (PyTorch's default)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient.

        Parameters
        ----------
        closure : callable, optional
            Recomputes the loss (and the gradients) before the update.

        Returns
        -------
        object
            What ``closure`` returned, or None.

        Raises
        ------
        NotImplementedError
            If the class does not implement ``_update`` (even with no grads).
        ValueError
            If a gradient does not have its parameter's shape.
        """
        if type(self)._update is Optimizer._update:
            raise NotImplementedError(f"{type(self).__name__} must implement _update")
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if grad.shape != p.data.shape:
                    raise ValueError(
                        f"`grad` of {p!r} must have the parameter's shape "
                        f"{p.data.shape}, got {grad.shape}"
                    )
                state = self.state.get(p)
                if state is None:
                    # Kept only once the update puts something in it (SGD
                    # without momentum keeps no state, as torch's).
                    state = {}
                    self._update(p, grad, state, group)
                    if state:
                        self.state[p] = state
                else:
                    self._update(p, grad, state, group)
        return loss

    def _update(
        self,
        p: Parameter,
        grad: np.ndarray,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        """Update ``p.data`` in place from ``grad``, reading and writing ``state``.

        ``state`` is ``p``'s state dict (empty on its first update); ``group``
        holds the hyperparameters of ``p``'s group.
        """
        raise NotImplementedError

    def _scratch(self, like: np.ndarray, slot: int = 0) -> np.ndarray:
        """A work array shaped and typed like ``like``; contents undefined.

        Arrays with the same ``slot`` and dtype share memory: a slot is free
        again as soon as the caller moves on to the next parameter.
        """
        key = (like.dtype, slot)
        buf = self._scratch_buffers.get(key)
        if buf is None or buf.size < like.size:
            buf = np.empty(like.size, dtype=like.dtype)
            self._scratch_buffers[key] = buf
        return buf[: like.size].reshape(like.shape)

    def state_dict(self) -> dict[str, Any]:
        """Return the state and hyperparameters, shaped as PyTorch's.

        Returns
        -------
        dict
            ``{'state': {index: {name: ndarray or number}}, 'param_groups':
            [{...hyperparameters..., 'params': [index, ...]}]}``, where
            parameters are numbered in order across the groups. Arrays are
            copies, so later steps do not change a saved dict.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for p, p_state in self.state.items():
            state[index[id(p)]] = {
                k: v.copy() if isinstance(v, np.ndarray) else v
                for k, v in p_state.items()
            }
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a dict made by `state_dict` (possibly through JSON and npz).

        Hyperparameters are taken from ``state_dict``; arrays are copied and
        cast to their parameter's dtype. Nothing changes if validation fails.

        Parameters
        ----------
        state_dict : dict
            As returned by `state_dict`. Keys of ``'state'`` may be ints or
            their strings (as JSON writes them); lists stand for tuples.

        Raises
        ------
        ValueError
            If a key is missing, the number of groups or of parameters in a
            group differ, an index is unknown, or a state entry has the wrong
            shape or kind.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"`state_dict` must be a dict, got {type(state_dict).__name__}"
            )
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(
                    f"`state_dict` must have the key '{key}', got keys "
                    f"{sorted(state_dict)}"
                )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"`state_dict['param_groups']` must have {len(self.param_groups)} "
                f"groups, got {len(saved_groups)}"
            )
        params_by_index: dict[int, Parameter] = {}
        new_groups = []
        for i, (group, saved) in enumerate(
            zip(self.param_groups, saved_groups, strict=True)
        ):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"`state_dict['param_groups'][{i}]['params']` must have "
                    f"{len(group['params'])} parameters, got {len(saved['params'])}"
                )
            for index, p in zip(saved["params"], group["params"], strict=True):
                params_by_index[_as_index("param_groups", index)] = p
            new_group = {
                k: tuple(v) if isinstance(v, list) else v
                for k, v in saved.items()
                if k != "params"
            }
            new_group = {**group, **new_group, "params": group["params"]}
            self._validate_group(new_group)
            new_groups.append(new_group)

        new_state: dict[Parameter, dict[str, Any]] = {}
        for index, saved_state in state_dict["state"].items():
            p = params_by_index.get(_as_index("state", index))
            if p is None:
                raise ValueError(
                    f"`state_dict['state']` keys must be parameter indices in "
                    f"{sorted(params_by_index)}, got {index!r}"
                )
            new_state[p] = {
                name: self._load_state_value(f"[{index!r}][{name!r}]", name, v, p)
                for name, v in saved_state.items()
            }
        self.param_groups = new_groups
        self.state = new_state

    def _load_state_value(self, where: str, name: str, value: Any, p: Parameter) -> Any:
        """Validate and copy one state entry loaded for parameter ``p``."""
        if name in self._scalar_state_keys:
            if isinstance(value, np.ndarray) and value.size == 1:
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(
                    f"`state_dict['state']{where}` must be a number, got "
                    f"{type(value).__name__}"
                )
            return value
        value = np.asarray(value)
        if value.shape != p.data.shape:
            raise ValueError(
                f"`state_dict['state']{where}` must have shape {p.data.shape}, "
                f"got {value.shape}"
            )
        return np.array(value, dtype=p.data.dtype, copy=True)
