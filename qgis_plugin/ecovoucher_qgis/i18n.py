"""The language of QGIS's interface: Chinese when QGIS runs in Chinese (Settings ▸ Options ▸
General ▸ Override system locale, else the system's locale), English otherwise."""

from __future__ import annotations

from qgis.core import QgsSettings
from qgis.PyQt.QtCore import QLocale

from .texts import help_html, text


def language() -> str:
    settings = QgsSettings()
    override = str(settings.value("locale/overrideFlag", False)).lower() in ("true", "1")
    name = settings.value("locale/userLocale", "") if override else QLocale.system().name()
    return "zh" if str(name or "").lower().startswith("zh") else "en"


def tr(key: str, **values) -> str:
    """The text ``key`` of :mod:`ecovoucher_qgis.texts` in QGIS's language, formatted."""
    s = text(key, language())
    return s.format(**values) if values else s


def help_text(alg: str) -> str:
    return help_html(alg, language())
