"""The base of the map's own elements for folium/leafmap: a map element or layer whose JavaScript is the class's
``script`` (a Jinja macro with ``this``), and text placed in a figure as it is. The elements themselves:
``asgm.maps.point_layer`` (the labelled points), ``asgm.maps.controls`` (basemaps, panes, legends),
``asgm.maps.vector_layers`` (GeoJSON layers the browser fetches) and ``asgm.maps.overlays`` (the clicked patch,
OSM features, reviewed labels); ``asgm.maps.leaflet`` puts them on a map."""

from __future__ import annotations

from typing import Any

from branca.element import Element, MacroElement
from folium.map import Layer
from jinja2 import Template


class _FromScript:
    """Builds a map element's Jinja template from the class's ``script`` (with ``this``) and sets the keyword
    attributes. The template is a class attribute, as in folium: the page deep-copies the cached map on every
    rerun, and a copied Jinja template loses its macros."""

    script = ""
    kind = "Script"
    _template: Template

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        cls._template = Template("{% macro script(this, kwargs) %}" + cls.script + "{% endmacro %}")

    def _set(self, attrs: dict[str, Any]) -> None:
        self._name = self.kind
        for k, v in attrs.items():
            setattr(self, k, v)


class _Script(_FromScript, MacroElement):
    """A map element whose script is the class's ``script``."""

    def __init__(self, **attrs: Any):
        MacroElement.__init__(self)
        self._set(attrs)


class _ScriptLayer(_FromScript, Layer):
    """A folium ``Layer`` (listed in the layer control) whose script defines ``var <name>``."""

    def __init__(self, layer_name: str, overlay: bool, show: bool, **attrs: Any):
        Layer.__init__(self, name=layer_name, overlay=overlay, show=show)
        self._set(attrs)


class _Text(Element):
    """Text placed in a figure as it is (``Element(text)`` would parse it as a Jinja template)."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text.removesuffix("\n")  # as Jinja renders a template: without its last newline
