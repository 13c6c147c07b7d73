"""The study's CNN: parameter counts are the check (pipeline spec §4)."""

from __future__ import annotations

import json

import pytest

from asgm.cli import main
from asgm.model.cnn import build_model, summary


@pytest.mark.parametrize(
    ("size", "channels", "params"),
    [
        (48, 12, 116_577),
        (256, 17, 988_417),
        (48, 17, 118_017),
        (256, 12, 986_977),
        (256, 13, 987_265),
    ],
)
def test_parameter_counts_match_the_study(size, channels, params):
    assert build_model(size, channels).count_params() == params


def test_architecture_layers():
    import keras

    model = build_model(48, 12)
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    pools = [la.pool_size for la in model.layers if isinstance(la, keras.layers.MaxPooling2D)]
    drops = [la.rate for la in model.layers if isinstance(la, keras.layers.Dropout)]
    dense = [la.units for la in model.layers if isinstance(la, keras.layers.Dense)]
    assert len(convs) == 9 and all(c.filters == 32 and c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    assert pools == [(2, 2), (2, 2), (3, 3)]
    assert drops == [0.3, 0.3, 0.3]
    assert dense == [64, 64, 32, 1]
    assert model.layers[-1].activation.__name__ == "sigmoid"
    assert convs[-1].name == "conv3_3"  # the Grad-CAM target of the study (spec §5)


def test_model_summary_cli_json(capsys):
    assert main(["model", "summary", "--size", "48", "--channels", "12", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == 116_577 and out["input"] == [48, 48, 12]
    assert summary(256, 17)["params"] == 988_417
