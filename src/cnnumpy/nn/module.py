"""`Module`, the base of every layer, and the `Sequential` container.

A module holds parameters, buffers and the cache of its last forward pass. Its
``backward(dy)`` returns the gradient w.r.t. its input and *adds* the gradients of
its parameters into ``param.grad``, as PyTorch's autograd does, so gradients of
several backward passes accumulate until ``zero_grad()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from cnnumpy.nn.parameter import Parameter
from cnnumpy.validation import check_bool, check_dtype

__all__ = ["BackwardBeforeForwardError", "Module", "Sequential"]


class BackwardBeforeForwardError(RuntimeError, ValueError):
    """``backward`` was called with no forward pass to differentiate.

    A RuntimeError, as PyTorch raises for a missing graph, and a ValueError, as
    every other misuse of this library's API.
    """


def as_float_array(
    x: object, dtype: np.dtype | None = None, name: str = "input"
) -> np.ndarray:
    """Turn ``x`` into a float array: ``dtype`` if given, else keep a float dtype.

    Integer and boolean arrays (raw images, masks) become float32 when no dtype is
    given; anything non-numeric raises ``TypeError``.
    """
    arr = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"`{name}` must be a numeric array, got dtype {arr.dtype}")
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype.kind != "f":
        return arr.astype(np.float32)
    return arr


class Module:
    """Base class: parameters, buffers, children, train/eval and state dicts.

    Subclasses set parameters (:class:`Parameter`) and child modules as plain
    attributes; they are found in assignment order, which gives PyTorch's
    ``named_parameters()`` and ``state_dict()`` order and names. Buffers (state
    that is saved but not trained, such as running statistics) are listed by
    name in ``_buffer_names``.

    Attributes
    ----------
    training : bool
        Set by :meth:`train` / :meth:`eval`; changes dropout and batch norm.
    input_grad : bool
        Whether :meth:`backward` computes the gradient w.r.t. the input. A first
        layer, whose input is data, can skip it; :class:`Sequential` sets it on its
        children automatically. When False, ``backward`` returns None.
    """

    _buffer_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.training = True
        self.input_grad = True

    # --- the forward/backward contract -------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def _cached(self, name: str = "_ctx") -> Any:
        """The forward cache, or a clear error if backward comes before forward."""
        ctx = getattr(self, name, None)
        if ctx is None:
            raise BackwardBeforeForwardError(
                f"{type(self).__name__}.backward called before forward: run the "
                "forward pass first"
            )
        return ctx

    def _kept(self) -> Iterator[np.ndarray]:
        """The arrays this module keeps from its forward pass for its backward.

        An in-place layer that writes into one of them would make the backward
        pass wrong; `Sequential` checks for that (see its docstring).
        """
        for name in ("_x", "_y", "_ctx"):
            value = self.__dict__.get(name)
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, np.ndarray):
                    yield v

    # --- traversal ---------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def modules(self) -> Iterator[Module]:
        yield self
        for child in self.children():
            yield from child.modules()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(dotted_name, module)`` for this module and every one below it.

        PyTorch's walk and names: this module first, as ``prefix`` (``''``),
        then each child's subtree in order, ``'layer1.0.residual.body.conv1'``;
        the names of the ``state_dict`` keys without their last part. A module
        reached twice (shared) is given once, under its first name.
        """
        seen: set[int] = set()

        def walk(module: Module, name: str) -> Iterator[tuple[str, Module]]:
            if id(module) in seen:
                return
            seen.add(id(module))
            yield name, module
            for child_name, child in module.named_children():
                yield from walk(child, f"{name}.{child_name}" if name else child_name)

        yield from walk(self, prefix)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(dotted_name, Parameter)`` pairs, PyTorch's names (``'3.weight'``)."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for name in self._buffer_names:
            value = getattr(self, name)
            if value is not None:
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_buffers(prefix + name + ".")

    def zero_grad(self) -> None:
        """Reset every parameter's gradient (to None, as PyTorch's default)."""
        for param in self.parameters():
            param.zero_grad()

    def train(self, mode: bool = True) -> Module:
        mode = check_bool(mode, "mode")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, dtype: object) -> Module:
        """Cast every parameter, its gradient and the float buffers to ``dtype``.

        The modules then compute in ``dtype``: ``model.to(np.float64)`` turns a
        float32 network into its float64 twin, for a finite-difference check say.
        As in PyTorch, do it before creating the optimizer (whose state keeps its
        dtype) and before the next forward pass.

        Raises
        ------
        TypeError
            ``dtype`` is not float32 or float64.
        """
        dt = check_dtype(dtype)
        for m in self.modules():
            for value in vars(m).values():
                if isinstance(value, Parameter):
                    value.data = value.data.astype(dt)
                    if value.grad is not None:
                        value.grad = value.grad.astype(dt)
            for name in m._buffer_names:
                buf = getattr(m, name)
                if buf is not None and buf.dtype.kind == "f":
                    setattr(m, name, buf.astype(dt))
            if "dtype" in vars(m):  # a module that computes in its own dtype
                m.dtype = dt
        return self

    def double(self) -> Module:
        """``self.to(np.float64)``."""
        return self.to(np.float64)

    def float(self) -> Module:
        """``self.to(np.float32)``."""
        return self.to(np.float32)

    # --- state dicts ---------------------------------------------------------------
    def _state_entries(self) -> dict[str, tuple[Module, str]]:
        """Key -> (owning module, attribute), in PyTorch's state_dict order."""
        entries: dict[str, tuple[Module, str]] = {}

        def walk(module: Module, prefix: str) -> None:
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    entries[prefix + name] = (module, name)
            for name in module._buffer_names:
                if getattr(module, name) is not None:
                    entries[prefix + name] = (module, name)
            for name, child in module.named_children():
                walk(child, prefix + name + ".")

        walk(self, "")
        return entries

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{name: array}`` for every parameter and buffer, as copies."""
        out: dict[str, np.ndarray] = {}
        for key, (module, attr) in self._state_entries().items():
            value = getattr(module, attr)
            out[key] = (value.data if isinstance(value, Parameter) else value).copy()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Copy arrays into the parameters and buffers, converting to their dtype.

        Everything is checked first (missing, unexpected or wrongly shaped keys,
        non-numeric values), so a failed load changes nothing. Accepts PyTorch's
        ``{k: v.numpy() for k, v in model.state_dict().items()}``.

        Raises
        ------
        TypeError
            ``state_dict`` is not a mapping, or a value is not numeric.
        ValueError
            A key is missing, unexpected, or has the wrong shape.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(
                f"`state_dict` must be a mapping of name -> array, got "
                f"{type(state_dict).__name__}"
            )
        entries = self._state_entries()
        missing = [k for k in entries if k not in state_dict]
        unexpected = [k for k in state_dict if k not in entries]
        if missing or unexpected:
            raise ValueError(
                f"state_dict keys do not match {type(self).__name__}: "
                f"missing {missing}, unexpected {unexpected}"
            )
        staged = []
        for key, (module, attr) in entries.items():
            target = getattr(module, attr)
            target_arr = target.data if isinstance(target, Parameter) else target
            value = np.asarray(state_dict[key])
            if value.dtype.kind not in "fiub":
                raise TypeError(
                    f"state_dict[{key!r}] must be numeric, got dtype {value.dtype}"
                )
            if value.shape != target_arr.shape:
                raise ValueError(
                    f"state_dict[{key!r}] must have shape {target_arr.shape}, "
                    f"got {value.shape}"
                )
            staged.append((target_arr, value))
        for target_arr, value in staged:
            target_arr[...] = value.astype(target_arr.dtype, copy=False)

    # --- printing ------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


class Sequential(Module):
    """Modules applied in order; ``backward`` runs them in reverse.

    Indexable like a list (``model[0]``, ``model[-1]``, ``model[1:3]``); children
    are named ``'0'``, ``'1'``, ... so parameters are ``'0.weight'`` etc. As in
    PyTorch, one ``OrderedDict`` (or dict) of modules names them instead:
    ``Sequential(OrderedDict(conv1=Conv2d(1, 6, 5), act1=Tanh()))`` has
    ``'conv1.weight'`` and ``model.conv1``. A slice keeps the names.

    As PyTorch does, ``backward`` raises RuntimeError when an in-place layer
    (``ReLU(inplace=True)`` ...) overwrote an array that an earlier layer keeps
    for its own backward pass: the output of ``Tanh``, ``Sigmoid``, ``ReLU``,
    ``Softmax`` or ``MaxPool2d`` (or a view of it, through ``Flatten``). The
    forward pass, whose values are right, still works, for inference.

    ``backward`` asks a child for its input gradient only if something needs it:
    the caller (``self.input_grad``) or a parameter in an earlier child. So in a
    network that starts with a convolution, the first layer skips its most
    expensive product and the col2im, and the parameter-free layers before the
    first parameter are not run backward at all.
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            named = list(modules[0].items())
        else:
            named = [(str(i), m) for i, m in enumerate(modules)]
        for i, (name, m) in enumerate(named):
            if not isinstance(m, Module):
                raise TypeError(
                    f"Sequential arguments must be Modules, got {type(m).__name__} "
                    f"at position {i} ({name!r})"
                )
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(
                    f"Sequential names must be non-empty strings without '.', "
                    f"got {name!r}"
                )
        self._names = [name for name, _ in named]
        self._layers = [m for _, m in named]
        # (i, x): the arrays the in-place children were given in the last
        # forward pass; backward checks them (see _kept_by_earlier).
        self._inplace_inputs: list[tuple[int, np.ndarray]] = []

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from zip(self._names, self._layers)

    def __getattr__(self, name: str) -> Module:
        # Only reached when normal lookup fails: a child by its name.
        names = self.__dict__.get("_names", ())
        if name in names:
            return self._layers[names.index(name)]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Sequential(dict(zip(self._names[index], self._layers[index])))
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"`index` must be an int or a slice, got {index!r}")
        n = len(self._layers)
        if not -n <= index < n:
            raise IndexError(f"`index` must be in [{-n}, {n - 1}], got {index}")
        return self._layers[index]

    def append(self, module: Module) -> Sequential:
        if not isinstance(module, Module):
            raise TypeError(f"`module` must be a Module, got {type(module).__name__}")
        self._names.append(str(len(self._layers)))
        self._layers.append(module)
        return self

    def forward(self, x: np.ndarray) -> np.ndarray:
        # The in-place check waits for backward, which is the pass it guards:
        # until then the arrays the earlier children keep do not change, so
        # the answer is the same, and inference does not pay for it.
        inplace = []
        for i, m in enumerate(self._layers):
            if getattr(m, "inplace", False) and isinstance(x, np.ndarray):
                inplace.append((i, x))
            x = m(x)
        self._inplace_inputs = inplace
        return x

    def _kept_by_earlier(self, i: int, x: np.ndarray) -> str | None:
        """Which layer before ``i`` keeps an array that ``x`` shares memory with,
        as a message (None if none does)."""
        if not isinstance(x, np.ndarray):
            return None
        for j in range(i):
            if any(np.may_share_memory(x, kept) for kept in self._layers[j]._kept()):
                earlier, inplace = self._layers[j], self._layers[i]
                return (
                    f"the array {type(earlier).__name__} (layer "
                    f"{self._names[j]!r}) keeps for its backward pass was "
                    f"overwritten by the in-place {type(inplace).__name__} (layer "
                    f"{self._names[i]!r}): its gradients would be wrong; use "
                    f"inplace=False there"
                )
        return None

    def _kept(self) -> Iterator[np.ndarray]:
        for m in self._layers:
            yield from m._kept()

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        for i, x in self._inplace_inputs:
            overwritten = self._kept_by_earlier(i, x)
            if overwritten is not None:
                raise RuntimeError(overwritten)
        # Children up to and including the first one with parameters need no
        # input gradient unless the caller wants it.
        first_param = next(
            (i for i, m in enumerate(self._layers) if next(m.parameters(), None)),
            len(self._layers),
        )
        for i in reversed(range(len(self._layers))):
            m = self._layers[i]
            m.input_grad = self.input_grad or i > first_param
            dy = m.backward(dy)
            if dy is None:
                return None
        return dy
