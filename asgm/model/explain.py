"""Where a model looks: Grad-CAM heat maps (spec §5) for one input, of a single net or of an ensemble, for the
Patch viewer and the scan window viewer. Keras/TensorFlow are imported inside the functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asgm.model.inference import InferenceError


def _rewired(model: Any, inp: Any, layer_name: str | None) -> tuple[Any, Any]:
    """(target conv output, model output) of ``model`` (a chain of layers: the study's CNN or the detector)
    re-wired as a functional graph on ``inp``; the target is ``layer_name`` or the last Conv2D."""
    import keras

    if layer_name is None:
        convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
        if not convs:
            raise InferenceError("the model has no Conv2D layer for Grad-CAM")
        layer_name = convs[-1].name
    h, conv_out = inp, None
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):  # functional models (the detector) list their input
            continue
        h = layer(h)
        if layer.name == layer_name:
            conv_out = h
    if conv_out is None:
        raise InferenceError(f"no layer named {layer_name!r} in the model")
    return conv_out, h


def gradcam(model: Any, x: np.ndarray, layer_name: str | None = None, member: int | None = None) -> np.ndarray:
    """Grad-CAM heat map (H, W) in [0, 1] for one input, on the last Conv2D (spec §5).

    For an ensemble (``asgm.model.ensemble``): the Grad-CAM of its output (the mean of the members' logits)
    at every member's last Conv2D, summed; ``member`` gives one member's own map instead."""
    import keras
    import tensorflow as tf

    from asgm.model.ensemble import is_ensemble, members

    def graph(net: Any) -> Any:
        inp = keras.Input(net.input_shape[1:])
        return keras.Model(inp, list(_rewired(net, inp, layer_name)))

    nets, head = [model], None
    if is_ensemble(model):
        nets, head = members(model), model.get_layer("mean_logit")
        if member is not None and not 0 <= member < len(nets):
            raise InferenceError(f"the ensemble has members 0..{len(nets) - 1}, not {member}")
        if member is not None:
            nets, head = [nets[member]], None
    elif member is not None:
        raise InferenceError("member= is for ensembles; this model is a single net")
    # One graph per net (their layer names clash); one tape over all, through the ensemble's own head.
    graphs = [graph(n) for n in nets]
    xt = tf.convert_to_tensor(np.asarray(x, np.float32)[None])
    with tf.GradientTape() as tape:
        pairs = [g(xt, training=False) for g in graphs]
        conv_maps = [c for c, _ in pairs]
        pred = head([o for _, o in pairs]) if head is not None else pairs[0][1]
        target = pred[:, 0]
    grads = tape.gradient(target, conv_maps)
    cam = np.zeros(x.shape[:2], np.float32)
    for conv, grad in zip(conv_maps, grads, strict=True):
        weights = tf.reduce_mean(grad, axis=(1, 2), keepdims=True)
        one = tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1))[0]
        cam += tf.image.resize(one[..., None], x.shape[:2], method="bilinear")[..., 0].numpy()
    peak = float(cam.max())
    return (cam / peak).astype(np.float32) if peak > 0 else np.zeros(x.shape[:2], np.float32)
