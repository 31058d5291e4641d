"""The Processing provider "EcoVoucher 生态券" (id ``ecovoucher``) and its setting, the
``ecovoucher`` command (Settings ▸ Options ▸ Processing ▸ Providers ▸ EcoVoucher).

Registrable from a standalone script, with no ``iface``::

    QgsApplication.processingRegistry().addProvider(EcoVoucherProvider())
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .i18n import tr

#: the setting's name (stored by QGIS as Processing/Configuration/ECOVOUCHER_COMMAND)
COMMAND_SETTING = "ECOVOUCHER_COMMAND"
SETTINGS_GROUP = "EcoVoucher"
ICON = Path(__file__).with_name("icon.svg")


def _processing_config():
    """QGIS's ProcessingConfig, or None where the Processing plugin is not importable."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig, Setting
    except ImportError:
        return None, None
    return ProcessingConfig, Setting


def configured_command() -> str:
    """The command set in the options ('' when none: then it is looked for)."""
    config, _ = _processing_config()
    if config is None:
        return ""
    return str(config.getSetting(COMMAND_SETTING) or "")


class EcoVoucherProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "ecovoucher"

    def name(self) -> str:
        return tr("provider")

    def longName(self) -> str:
        return tr("provider")

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def load(self) -> bool:
        config, setting = _processing_config()
        if config is not None:
            config.settingIcons[SETTINGS_GROUP] = self.icon()
            config.addSetting(
                setting(
                    SETTINGS_GROUP,
                    COMMAND_SETTING,
                    tr("setting.command"),
                    "",
                    valuetype=setting.STRING,
                )
            )
            config.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        config, _ = _processing_config()
        if config is not None and COMMAND_SETTING in config.settings:
            config.removeSetting(COMMAND_SETTING)

    def loadAlgorithms(self) -> None:
        from .algorithms import ALGORITHMS

        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
