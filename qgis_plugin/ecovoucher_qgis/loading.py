"""Bring the results into QGIS: the layers of the project a run stores (``eco_vouchers.qgz``),
styled, into the current project — or that project opened instead. Runs in the main thread
(``postProcessAlgorithm``)."""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import QgsLayerTreeGroup, QgsLayerTreeLayer, QgsProject, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer

from .i18n import tr

ADD, OPEN, NOTHING = 0, 1, 2


def load(mode: int, project: QgsProject, folder: Path, gpkg: Path, feedback, title: str) -> int:
    """Load the outputs in ``folder`` as ``mode`` says; the number of layers added."""
    qgz = folder / "eco_vouchers.qgz"
    if mode == NOTHING:
        return 0
    if mode == OPEN and qgz.exists():
        _open_later(qgz)
        return 0
    try:
        if qgz.exists():
            return _add_project_layers(project, qgz, gpkg, title, feedback)
        return _add_layers(project, gpkg, title)
    except Exception as exc:  # a failure to display must not hide the run's success
        feedback.reportError(tr("msg.not_loaded", path=str(gpkg), why=str(exc)), False)
        return 0


def _open_later(qgz: Path) -> None:
    """Open the project once Processing has finished with the current one (in QGIS: asking
    to save unsaved changes first)."""
    try:
        from qgis.utils import iface
    except ImportError:
        iface = None
    if iface is not None:
        QTimer.singleShot(0, lambda: iface.addProject(str(qgz)))
    else:
        QgsProject.instance().read(str(qgz))


def _add_project_layers(project: QgsProject, qgz: Path, gpkg: Path, title: str, feedback) -> int:
    """Copy the stored project's layer tree (layers with all their styles and aliases) into a new
    group at the top of ``project``'s tree. Layers are cloned, so each gets an id of its own and
    the same results can be added twice."""
    stored = QgsProject()
    if not stored.read(str(qgz)):
        return _add_layers(project, gpkg, title)
    if not project.mapLayers() and stored.crs().isValid():
        project.setCrs(stored.crs())
    group = project.layerTreeRoot().insertGroup(0, title)
    added = _copy_tree(stored.layerTreeRoot(), group, project, gpkg)
    stored.clear()
    feedback.pushInfo(tr("msg.loaded", n=added, path=str(qgz)))
    return added


def _copy_tree(source: QgsLayerTreeGroup, target: QgsLayerTreeGroup, project, gpkg: Path) -> int:
    added = 0
    for node in source.children():
        if isinstance(node, QgsLayerTreeGroup):
            sub = target.addGroup(node.name())
            added += _copy_tree(node, sub, project, gpkg)
            sub.setExpanded(node.isExpanded())
        elif isinstance(node, QgsLayerTreeLayer) and node.layer() is not None:
            layer = node.layer()
            if layer.isValid():
                copy = layer.clone()
                copy.setName(layer.name())
            else:  # stored path not found: the same table of the GeoPackage, default style
                copy = QgsVectorLayer(
                    f"{gpkg}|layername={_table(layer.source())}", layer.name(), "ogr"
                )
            if copy.isValid():
                project.addMapLayer(copy, False)
                target.addLayer(copy).setExpanded(node.isExpanded())
                added += 1
    return added


def _table(source: str) -> str:
    for part in source.split("|"):
        if part.startswith("layername="):
            return part[len("layername=") :]
    return os.path.splitext(os.path.basename(source))[0]


def _add_layers(project: QgsProject, gpkg: Path, title: str) -> int:
    """Every layer of a GeoPackage (each opens with the default style stored in it), maps above
    tables."""
    from qgis.core import QgsProviderRegistry

    sublayers = QgsProviderRegistry.instance().providerMetadata("ogr").querySublayers(str(gpkg))
    layers = []
    for d in sublayers:
        if d.name() == "layer_styles":
            continue
        layer = QgsVectorLayer(f"{gpkg}|layername={d.name()}", d.name(), "ogr")
        if layer.isValid():
            layers.append(layer)
    layers.sort(key=lambda lyr: not lyr.isSpatial())
    group = project.layerTreeRoot().insertGroup(0, title)
    for layer in layers:
        project.addMapLayer(layer, False)
        group.addLayer(layer)
    return len(layers)
