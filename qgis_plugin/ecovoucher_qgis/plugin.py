"""The plugin object QGIS loads: it only registers the Processing provider (no toolbar, no
dialog of its own; the algorithms are in the Processing Toolbox under "EcoVoucher 生态券")."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import EcoVoucherProvider


class EcoVoucherPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None

    def initProcessing(self) -> None:
        if self.provider is None:
            self.provider = EcoVoucherProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
