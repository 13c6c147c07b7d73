"""False alarms of the shipped default model on real pixels with no known mining (issue 20, a check: nothing
is tuned on it).

1. The real Sentinel-2 scene of dlr-eoc/ukis-csmask (400 windows of 48 px at stride 24, clouds included):
   share of windows called mining when fed as reflectance with the old rule (DN / 10000) and with the
   run's encoding applied (display_rgb_8bit, ``asgm.model.inputs.encode_bands``).
2. The real chips' own cloudy negatives: Earth Genome's clear-0.05 gallery of Bolívar negatives (34 chips,
   already display-encoded, so both rules agree).
Beside: the model's false-positive rate on its own test split (models/detector-default/metrics.json).

    ASGM_DATA_MIRROR=../shared/data python benchmarks/false_alarms.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def run_scorer(run: str):
    """``(probabilities, threshold)``: ``probabilities(dn_windows, encoding=None)`` runs the run's recipe on DN
    windows (N, bands, 48, 48) encoded with ``encoding`` (default: the run's own, as it was trained)."""
    import numpy as np

    from asgm.model import inference, runs
    from asgm.model.inputs import encode_bands

    info = runs.get_run(run)
    cfg, temp = info.config, inference.run_temperature(info.metrics)
    model = runs.load_model(run)

    def probabilities(dn_windows, encoding=None):
        x = encode_bands(dn_windows, encoding or cfg.encoding).transpose(0, 2, 3, 1)
        return inference.recipe_probabilities(model, np.ascontiguousarray(x), cfg, temp)

    return probabilities, float(info.metrics["threshold"])


def scene_windows():
    """The real no-mining scene's DN windows (48 px at stride 24) and their centres in metres (x east, y north)."""
    import numpy as np
    import real_scene

    dn = real_scene.scene_dn()
    origins = real_scene.window_origins(dn.shape[1])
    wins = np.stack([dn[:, r : r + 48, c : c + 48] for r, c in origins])
    return wins, np.array([[c * 10.0, -r * 10.0] for r, c in origins])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="detector-default", help="the run to check (default: detector-default)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("ASGM_MODELS_DIR", str(REPO / "models"))
    import numpy as np

    from asgm.config import REFLECTANCE
    from asgm.errors import AsgmError
    from asgm.model import runs
    from asgm.model.calibration import decide
    from asgm.model.spatial_prior import SpatialPrior, apply_prior
    from asgm.sources.demo import GALLERY_KEYS, NEGATIVE_CODES
    from asgm.sources.gallery import gallery_chips

    try:
        info = runs.get_run(args.run)
        probabilities, thr = run_scorer(args.run)
    except AsgmError as exc:
        parser.error(str(exc))
    cfg = info.config

    def share(p: np.ndarray) -> float:
        return float(decide(p, thr).mean())

    wins, xy = scene_windows()
    cloudy = np.stack(gallery_chips(GALLERY_KEYS["F"], NEGATIVE_CODES.count("F")))
    p_scene = probabilities(wins)
    # Earth Genome's isolation rule (5 nearest within 3 km, t_iso 0.75) with t_main = this run's threshold
    # (t_iso raised to it when the run's threshold is above 0.75).
    prior = SpatialPrior(t_main=round(thr, 4), t_iso=max(0.75, round(thr, 4)))
    m = info.metrics
    out = {
        "run": args.run,
        "scene_windows": len(wins),
        "scene_share_mining_old_rule": share(probabilities(wins, REFLECTANCE)),
        "scene_share_mining_encoded": share(p_scene),
        "scene_share_mining_spatial_prior": float(apply_prior(xy, p_scene, prior).decision.mean()),
        "spatial_prior": prior.describe(),
        "cloudy_negative_chips": len(cloudy),
        "cloudy_share_mining_old_rule": share(probabilities(cloudy, REFLECTANCE)),
        "cloudy_share_mining_encoded": share(probabilities(cloudy)),
        "test_split_false_positive_rate": m["fp"] / (m["fp"] + m["tn"]),
        "test_split_fp_tn": [m["fp"], m["tn"]],
        "threshold": thr,
        "encoding": cfg.encoding.model_dump() if cfg.encoding else None,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"real scene, {out['scene_windows']} windows (no known mining): called mining "
        f"{out['scene_share_mining_old_rule']:.1%} with the old rule (DN/10000), "
        f"{out['scene_share_mining_encoded']:.1%} with the run's encoding, "
        f"{out['scene_share_mining_spatial_prior']:.1%} with the spatial prior (t_main = the run's threshold)"
    )
    print(
        f"cloudy negative chips ({out['cloudy_negative_chips']}, clear 0.05 gallery): "
        f"{out['cloudy_share_mining_old_rule']:.1%} old rule, {out['cloudy_share_mining_encoded']:.1%} encoded"
    )
    print(
        f"test split false-positive rate: {out['test_split_false_positive_rate']:.1%} "
        f"({m['fp']} of {m['fp'] + m['tn']} negatives), threshold {thr:.3f}"
    )


if __name__ == "__main__":
    main()
