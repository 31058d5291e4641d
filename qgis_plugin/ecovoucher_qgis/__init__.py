"""EcoVoucher 生态券 — a QGIS Processing provider that runs the ``ecovoucher`` command.

QGIS calls :func:`classFactory`; scripts register the provider directly::

    from ecovoucher_qgis.provider import EcoVoucherProvider
    QgsApplication.processingRegistry().addProvider(EcoVoucherProvider())
"""


def classFactory(iface):
    from .plugin import EcoVoucherPlugin

    return EcoVoucherPlugin(iface)
