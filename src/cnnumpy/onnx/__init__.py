"""ONNX: export cnnumpy models, load ONNX CNNs as cnnumpy modules.

Needs the ``onnx`` extra (``pip install 'cnnumpy[onnx]'``: onnx, and
onnxruntime to run the exported graphs), imported only by these functions.
"""

from cnnumpy.onnx.export import OPSET, OPSETS, export
from cnnumpy.onnx.load import load, load_trained
from cnnumpy.onnx.read import (
    MAX_FILE_BYTES,
    MAX_NODES,
    MAX_TENSOR_ELEMENTS,
    ONNXError,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_TENSOR_ELEMENTS",
    "OPSET",
    "OPSETS",
    "ONNXError",
    "export",
    "load",
    "load_trained",
]
