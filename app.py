"""ASGM Explorer — the entry point (`streamlit run app.py`): the menu of pages, in the order it reads.

The pages live in ``pages/`` (their paths, titles and URLs are defined once, in ``asgm.app.page.MENU``).
"""

import streamlit as st

from asgm.app.page import MENU

# The menu itself is drawn by every page (asgm.app.page.menu), the same in both of Streamlit's page modes.
pages = [st.Page(p.script, title=p.title, url_path=p.url_path, default=p is MENU[0]) for p in MENU]
st.navigation(pages, position="hidden").run()
