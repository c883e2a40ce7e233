"""See inside a trained network: feature maps, saliency, Grad-CAM.

The computations are NumPy (`feature_maps`, `saliency`, `grad_cam`): a forward
pass that keeps the layers' outputs and a backward pass from the chosen
class's logit, in evaluation mode, leaving the model's gradients as they were.
The pictures (`plot_feature_maps`, `plot_saliency`, `plot_grad_cam`) need
matplotlib, imported when drawing; `inspect_images` writes them all for a
trained model with a text summary, as ``cnnumpy inspect`` does.
"""

from cnnumpy.inspect.core import feature_maps, grad_cam, saliency
from cnnumpy.inspect.plots import plot_feature_maps, plot_grad_cam, plot_saliency
from cnnumpy.inspect.report import inspect_images, layer_activity

__all__ = [
    "feature_maps",
    "grad_cam",
    "inspect_images",
    "layer_activity",
    "plot_feature_maps",
    "plot_grad_cam",
    "plot_saliency",
    "saliency",
]
