"""App glue (asgm.app) that pages share, tested without a browser."""

from asgm.app import loaders
from asgm.config import PROJECT_ROOT, ExperimentConfig
from asgm.data.store import PatchStore, StoreMeta


def test_product_level_note_warns_across_levels_only(data_env):
    for name, level in [("l1c", "L1C"), ("l2a", "L2A"), ("l1c-b", "L1C")]:
        PatchStore.create(StoreMeta(name=name, source="test", bands=("B4", "B3", "B2"), size=48, product_level=level))
    trained_on_l1c = ExperimentConfig(store="l1c")
    note = loaders.product_level_note(trained_on_l1c, "l2a")
    assert note and "Level-1C" in note and "Level-2A" in note
    assert loaders.product_level_note(trained_on_l1c, "l1c-b") is None
    assert loaders.product_level_note(ExperimentConfig(store="deleted"), "l2a") is None


def test_patch_viewer_explains_a_bad_link(data_env, demo_root, monkeypatch):
    """A deep link naming a store or sample that does not exist says so instead of silently switching."""
    import shutil

    from streamlit.testing.v1 import AppTest

    shutil.copytree(demo_root / "demo", data_env / "data" / "stores" / "demo")
    monkeypatch.setenv("ASGM_APP_AUTOPREPARE", "0")
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "3_Patch_viewer.py"), default_timeout=120)
    at.query_params["store"] = "nope"
    at.run()
    assert any("`nope`, which is not on this machine" in w.value for w in at.warning)
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "3_Patch_viewer.py"), default_timeout=120)
    at.query_params["store"] = "demo"
    at.query_params["sample"] = "xyz"
    at.run()
    assert any("No patch `xyz` in store `demo`" in w.value for w in at.warning)


def test_pages_show_only_asgm_errors_as_guidance():
    """``show_error`` (an error box saying what to do) is only reached from ``except AsgmError``: a plain bug
    must reach Streamlit's own error display, not be dressed up as advice."""
    import ast

    files = [
        PROJECT_ROOT / "app.py",
        *sorted((PROJECT_ROOT / "pages").glob("*.py")),
        *sorted((PROJECT_ROOT / "asgm" / "app").glob("*.py")),
    ]
    calls = 0
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for handler in (n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)):
            names = {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)} if handler.type else {"<bare>"}
            shown = [
                c
                for c in ast.walk(handler)
                if isinstance(c, ast.Call) and getattr(c.func, "attr", getattr(c.func, "id", None)) == "show_error"
            ]
            calls += len(shown)
            assert not shown or names == {"AsgmError"}, f"{path.name}:{handler.lineno} shows {names} as guidance"
    assert calls >= 10  # the check saw the pages' error boxes


def test_cli_errors_are_asgm_errors():
    from asgm.cli import CommandError, main
    from asgm.errors import AsgmError

    assert issubclass(CommandError, AsgmError)
    assert main(["model", "summary", "--size", "4"]) == 1  # a CommandError: one line, exit status 1


def test_home_credits_each_source_once():
    from asgm import CREDITS
    from asgm.app import page

    text = page.credits_markdown()
    assert len(text.splitlines()) == len(CREDITS)
    for needle in ("OpenStreetMap contributors", "CC BY 4.0", "Copernicus Sentinel data", "MIT"):
        assert text.count(needle) == 1, needle
