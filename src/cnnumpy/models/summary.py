"""A Keras-style table of a model: layer, output shape, parameters, multiply-adds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnumpy import nn
from cnnumpy.validation import check_instance, check_shape, check_str

__all__ = ["MAX_INPUT_ELEMENTS", "count_parameters", "summary"]

# The largest input `summary` runs through the model (one image of C*H*W values).
MAX_INPUT_ELEMENTS = 2**22


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable parameters, non-trainable values) of ``module``.

    Non-trainable values are the buffers that a state_dict holds besides the
    parameters (BatchNorm's running mean and variance), as Keras counts them;
    the step counter ``num_batches_tracked`` is not a weight and is left out.
    """
    check_instance(module, "module", nn.Module, "an nn.Module")
    trainable = sum(p.data.size for p in module.parameters())
    frozen = sum(
        b.size
        for name, b in module.named_buffers()
        if not name.endswith("num_batches_tracked")
    )
    return int(trainable), int(frozen)


def _multiply_adds(module: nn.Module, x: np.ndarray) -> tuple[np.ndarray, int]:
    """``module(x)`` and the multiply-adds of its convolutions and linear layers.

    Containers are walked layer by layer (a Residual through both branches);
    pooling, normalisation and activations count as none.
    """
    if isinstance(module, nn.Sequential):
        total = 0
        for layer in module:
            x, macs = _multiply_adds(layer, x)
            total += macs
        return x, total
    if isinstance(module, nn.Residual):
        y, body = _multiply_adds(module.body, x)
        _, shortcut = _multiply_adds(module.shortcut, x)
        return module(x), body + shortcut
    y = module(x)
    if isinstance(module, nn.Conv2d):
        kH, kW = module.kernel_size
        per_output = module.in_channels // module.groups * kH * kW
        return y, y[0].size * per_output
    if isinstance(module, nn.ConvTranspose2d):
        kH, kW = module.kernel_size
        per_input = module.out_channels // module.groups * kH * kW
        return y, x[0].size * per_input
    if isinstance(module, nn.Linear):
        return y, y[0].size * module.in_features
    return y, 0


def _run(
    module: nn.Module,
    x: np.ndarray,
    name: str,
    indent: str,
    rows: list[tuple[str, str, int]],
) -> np.ndarray:
    """``module(x)``, adding its row to ``rows``, then its layers' if a Sequential
    and its branches' if a Residual, indented."""
    y = module(x)
    out = ", ".join(["N", *map(str, y.shape[1:])])
    params = sum(count_parameters(module))
    rows.append((f"{indent}{name} ({type(module).__name__})", f"({out})", params))
    if isinstance(module, nn.Sequential):  # a stage or block of a deeper model
        for layer_name, layer in module.named_children():
            x = _run(layer, x, f"{name}.{layer_name}", indent + "  ", rows)
    if isinstance(module, nn.Residual):
        for branch_name, branch in module.named_children():
            b = x
            if isinstance(branch, nn.Sequential):
                for layer_name, layer in branch.named_children():
                    b = _run(
                        layer, b, f"{branch_name}.{layer_name}", indent + "  ", rows
                    )
            else:
                _run(branch, b, branch_name, indent + "  ", rows)
    return y


def summary(
    model: nn.Sequential, input_shape: Sequence[int], name: str = "model"
) -> str:
    """The table of ``model``'s layers for inputs of shape ``input_shape``.

    One zero image is run through the layers in evaluation mode to find each
    output shape; the model's mode and weights are left as they were. A
    :class:`~cnnumpy.nn.Residual` block has its row (output and parameters of
    the whole block), then one indented row per layer of its ``body`` and its
    ``shortcut``; a nested Sequential (a stage of a ResNet) has its row, then
    one indented row per layer. The last line counts the multiply-adds of one
    image through the convolutions and linear layers.

    Parameters
    ----------
    model : nn.Sequential
    input_shape : (C, H, W)
        Shape of one input image, without the batch dimension.
    name : str
        Title of the table.

    Returns
    -------
    str
        The table; the batch dimension shows as ``N``.

    Examples
    --------
    >>> from cnnumpy.models import lenet5
    >>> print(summary(lenet5(rng=np.random.default_rng(0)), (1, 28, 28), "lenet5"))
    Model: lenet5
    Layer (type)           Output shape          Param #
    ====================================================
    conv1 (Conv2d)         (N, 6, 28, 28)            156
    act1 (Tanh)            (N, 6, 28, 28)              0
    pool1 (AvgPool2d)      (N, 6, 14, 14)              0
    conv2 (Conv2d)         (N, 16, 10, 10)         2,416
    act2 (Tanh)            (N, 16, 10, 10)             0
    pool2 (AvgPool2d)      (N, 16, 5, 5)               0
    flatten (Flatten)      (N, 400)                    0
    fc1 (Linear)           (N, 120)               48,120
    act3 (Tanh)            (N, 120)                    0
    fc2 (Linear)           (N, 84)                10,164
    act4 (Tanh)            (N, 84)                     0
    fc3 (Linear)           (N, 10)                   850
    ====================================================
    Total params: 61,706
    Trainable params: 61,706
    Non-trainable params: 0
    Multiply-adds per image: 416,520
    """
    check_instance(model, "model", nn.Sequential, "an nn.Sequential")
    check_instance(input_shape, "input_shape", (tuple, list), "a tuple (C, H, W)")
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be (C, H, W), got {input_shape!r}")
    try:
        shape = check_shape((1, *input_shape), maximum=MAX_INPUT_ELEMENTS)[1:]
    except ValueError as err:
        if "allowed" in str(err):
            raise
        raise ValueError(
            f"`input_shape` must be 3 positive ints (C, H, W), got {input_shape!r}"
        ) from None
    check_str(name, "name")
    dtype = next(iter(model.parameters())).data.dtype
    x = np.zeros((1, *shape), dtype=dtype)
    was_training = model.training
    rows = []
    model.eval()
    try:
        x0 = x
        for child_name, child in model.named_children():
            x = _run(child, x, child_name, "", rows)
        _, macs = _multiply_adds(model, x0)
    finally:
        model.train(was_training)
    trainable, frozen = count_parameters(model)
    widths = [max(22, *(len(r[0]) + 1 for r in rows)), 20, 10]
    rule = "=" * sum(widths)
    lines = [
        f"Model: {name}",
        f"{'Layer (type)':<{widths[0]}} {'Output shape':<{widths[1]}}"
        f"{'Param #':>{widths[2] - 1}}",
        rule,
    ]
    for layer, out, params in rows:
        lines.append(
            f"{layer:<{widths[0]}} {out:<{widths[1]}}{params:>{widths[2] - 1},}"
        )
    lines += [
        rule,
        f"Total params: {trainable + frozen:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {frozen:,}",
        f"Multiply-adds per image: {macs:,}",
    ]
    return "\n".join(lines)
