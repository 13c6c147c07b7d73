"""Ensembles as one model: three or more trained nets whose logits are averaged, saved as one ``model.keras``.

The ensemble is a Keras model ``patch -> member_0 .. member_n -> MeanLogit``: its output is
``sigmoid(mean_i logit(p_i))``, so every caller of a run's model (``asgm.model.inference.recipe_logits``:
training's scoring, ``asgm predict``, the map click, the Patch viewer, scans on Dask workers) gets the
ensemble's logit without knowing it is one: there is no second copy of the rule. Its temperature and
threshold are fitted on the members' shared validation split like any run's (``asgm.training.ensemble``).

``MeanLogit`` is registered with Keras serialization (package ``asgm``), so safe-mode loading accepts it;
``register`` must run before a model file is loaded (``asgm.model.runs.load_keras_model`` calls it).
Keras is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

#: Probabilities are clipped to [EPS, 1 - EPS] before the logit (as ``asgm.model.calibration.logit``).
EPS = 1e-7
#: Fewer members than this is not an ensemble worth the cost (Earth Genome uses six).
MIN_MEMBERS = 3
HEAD = "mean_logit"

_registered: dict[str, Any] = {}


def register() -> Any:
    """Define (once per process) and return the ``MeanLogit`` layer class, registered for deserialization."""
    if "MeanLogit" in _registered:
        return _registered["MeanLogit"]
    import keras

    @keras.saving.register_keras_serializable(package="asgm", name="MeanLogit")
    class MeanLogit(keras.layers.Layer):
        """sigmoid of the mean of the inputs' logits (each input a (B, 1) probability)."""

        def call(self, inputs: Any) -> Any:
            ops = keras.ops
            z = [ops.log(ops.clip(p, EPS, 1 - EPS)) - ops.log(1 - ops.clip(p, EPS, 1 - EPS)) for p in inputs]
            return ops.sigmoid(ops.mean(ops.stack(z, axis=0), axis=0))

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape[0]

    _registered["MeanLogit"] = MeanLogit
    return MeanLogit


def build_ensemble_model(models: list[Any]) -> Any:
    """One Keras model averaging the logits of ``models`` (same input shape; each renamed ``member_<i>``)."""
    import keras

    if len(models) < MIN_MEMBERS:
        raise ValueError(f"an ensemble needs at least {MIN_MEMBERS} members, got {len(models)}")
    shapes = {tuple(m.input_shape[1:]) for m in models}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members take different inputs: {sorted(shapes)}")
    head = register()
    inp = keras.Input(next(iter(shapes)), name="patch")
    outs = []
    for i, m in enumerate(models):
        m.name = f"member_{i}"  # the members' own names clash (asgm_detector, asgm_detector, ...)
        outs.append(m(inp))
    return keras.Model(inp, head(name=HEAD)(outs), name="asgm_ensemble")


def is_ensemble(model: Any) -> bool:
    """Whether ``model`` is an ensemble built here."""
    return any(layer.name == HEAD and type(layer).__name__ == "MeanLogit" for layer in getattr(model, "layers", ()))


def members(model: Any) -> list[Any]:
    """The member nets of an ensemble, in order."""
    return [layer for layer in model.layers if layer.name.startswith("member_") and hasattr(layer, "layers")]
