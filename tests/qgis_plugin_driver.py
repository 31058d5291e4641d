"""Drives the EcoVoucher QGIS plugin in a real, headless QGIS (run with Debian's /usr/bin/python3,
never inside the pytest process; see tests/test_qgis_plugin.py).

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 qgis_plugin_driver.py PROFILE PLAN.json OUT.json

Starts QGIS with a fresh profile folder PROFILE, runs the steps of PLAN (a JSON list) and writes
what it saw to OUT.json. Steps:

- ``{"op": "language", "lang": "zh"}``: QGIS's interface language (Settings ▸ Options ▸ General);
- ``{"op": "install", "zip": …}``: installs the plugin zip into the profile's plugin folder with
  QGIS's own installer code (as Plugins ▸ Install from ZIP does) and starts it as QGIS starts a
  Processing plugin;

- ``{"op": "algorithms", "lang": "zh"}``: the provider's algorithms, their names and parameters;
- ``{"op": "run", "alg": …, "params": {…}, "layers": {NAME: [uri, provider]}, "cancel_on_stage":
  …}``: loads the layers into the project, passes them as the parameters NAME, runs
  ``processing.run`` and reports the results or the error, the log, and the layers it added;
- ``{"op": "render", "png": …}``: renders the project's map layers to a PNG;
- ``{"op": "setting", "command": …, "env": null}``: the provider's setting (and ECOVOUCHER_EXE).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/runtime-qgis")
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
sys.path.append("/usr/share/qgis/python/plugins")
sys.path.append("/usr/share/qgis/python")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsLayerTreeGroup,
    QgsLayerTreeLayer,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsSettings,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QSettings, QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


class Feedback(QgsProcessingFeedback):
    """Records what the algorithm reports; cancels when a stage named ``cancel_on_stage`` starts."""

    def __init__(self, cancel_on_stage: str | None = None) -> None:
        super().__init__()
        self.cancel_on_stage = cancel_on_stage
        self.log: list[str] = []
        self.texts: list[str] = []
        self.progress: list[float] = []
        self.progressChanged.connect(self.progress.append)

    def setProgressText(self, text):
        self.texts.append(text)
        if self.cancel_on_stage and self.cancel_on_stage in text:
            self.cancel()
        super().setProgressText(text)

    def pushInfo(self, info):
        self.log.append(info)
        super().pushInfo(info)

    def pushWarning(self, warning):
        self.log.append("WARNING " + warning)
        super().pushWarning(warning)

    def reportError(self, error, fatalError=False):
        self.log.append("ERROR " + error)
        super().reportError(error, fatalError)


def install(zip_path: str) -> dict:
    """Plugins ▸ Install from ZIP, without the dialog: QGIS's own unzip into the profile's plugin
    folder, then the plugin started as QGIS starts a Processing provider plugin."""
    import qgis.utils
    from pyplugin_installer.unzip import unzip

    plugins_dir = os.path.join(QgsApplication.qgisSettingsDirPath(), "python", "plugins")
    os.makedirs(plugins_dir, exist_ok=True)
    unzip(zip_path, plugins_dir)
    qgis.utils.plugin_paths[:] = [plugins_dir]
    qgis.utils.home_plugin_path = plugins_dir
    sys.path.insert(0, plugins_dir)
    qgis.utils.updateAvailablePlugins()
    available = list(qgis.utils.available_plugins)
    metadata = dict(qgis.utils.plugins_metadata_parser["ecovoucher_qgis"]["general"])
    loaded = qgis.utils.loadPlugin("ecovoucher_qgis")
    started = qgis.utils.startProcessingPlugin("ecovoucher_qgis")
    module = sys.modules["ecovoucher_qgis"].__file__
    return {
        "plugins_dir": plugins_dir,
        "available": available,
        "metadata": metadata,
        "loaded": loaded,
        "started": started,
        "module": module,
    }


def set_language(lang: str) -> None:
    s = QgsSettings()
    s.setValue("locale/overrideFlag", True)
    s.setValue("locale/userLocale", "zh_CN" if lang == "zh" else "en_US")


def op_algorithms(step: dict) -> dict:
    set_language(step.get("lang", "en"))
    provider = QgsApplication.processingRegistry().providerById("ecovoucher")
    algs = {}
    for alg in provider.algorithms():
        algs[alg.id()] = {
            "name": alg.displayName(),
            "help": alg.shortHelpString(),
            "parameters": {p.name(): p.description() for p in alg.parameterDefinitions()},
        }
    return {"provider": provider.name(), "algorithms": algs}


def _layer(uri: str, provider: str, name: str):
    if provider == "gdal":
        layer = QgsRasterLayer(uri, name, provider)
    else:
        layer = QgsVectorLayer(uri, name, provider)
    if not layer.isValid():
        raise RuntimeError(f"test layer {name} ({uri}) is not valid")
    QgsProject.instance().addMapLayer(layer)
    return layer


def _tree(group) -> list[dict]:
    out = []
    for node in group.children():
        if isinstance(node, QgsLayerTreeGroup):
            out.append({"group": node.name(), "children": _tree(node)})
        elif isinstance(node, QgsLayerTreeLayer):
            lyr = node.layer()
            entry = {"name": node.name(), "valid": bool(lyr and lyr.isValid())}
            if lyr is not None and lyr.isValid():
                entry["source"] = lyr.source()
                if isinstance(lyr, QgsVectorLayer):
                    entry["features"] = lyr.featureCount()
                    entry["renderer"] = lyr.renderer().type() if lyr.isSpatial() else None
                    entry["aliases"] = {f.name(): f.alias() for f in lyr.fields()}
                entry["styles"] = sorted(lyr.styleManager().styles())
            out.append(entry)
    return out


def op_run(step: dict) -> dict:
    import processing

    set_language(step.get("lang", "en"))
    params = dict(step.get("params", {}))
    for name, (uri, provider) in step.get("layers", {}).items():
        layer = _layer(uri, provider, name.lower())
        if step.get("subset", {}).get(name):
            layer.setSubsetString(step["subset"][name])
        params[name] = layer
    feedback = Feedback(step.get("cancel_on_stage"))
    before = {lyr.id() for lyr in QgsProject.instance().mapLayers().values()}
    out: dict = {}
    t0 = time.monotonic()
    try:
        out["results"] = {
            k: str(v) for k, v in processing.run(step["alg"], params, feedback=feedback).items()
        }
        out["ok"] = True
    except Exception as exc:
        out["ok"] = False
        out["error"] = str(exc)
        out["error_type"] = type(exc).__name__
        out["traceback"] = traceback.format_exc()
    out["seconds"] = time.monotonic() - t0
    QCoreApplication.processEvents()
    out["log"] = feedback.log
    out["texts"] = feedback.texts
    out["progress_max"] = max(feedback.progress, default=None)
    out["canceled"] = feedback.isCanceled()
    out["tree"] = _tree(QgsProject.instance().layerTreeRoot())
    out["project_file"] = QgsProject.instance().fileName()
    out["added"] = len({lyr.id() for lyr in QgsProject.instance().mapLayers().values()} - before)
    return out


def op_clear(step: dict) -> dict:
    QgsProject.instance().clear()
    return {}


def op_render(step: dict) -> dict:
    project = QgsProject.instance()
    layers = [
        node.layer()
        for node in project.layerTreeRoot().findLayers()
        if node.layer() is not None and node.layer().isSpatial() and node.isVisible()
    ]
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(layers[0].crs())
    extent = QgsRectangle()
    for lyr in layers:
        extent.combineExtentWith(lyr.extent())
    extent.scale(1.1)
    settings.setExtent(extent)
    settings.setOutputSize(QSize(900, 600))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(step["png"], "PNG")
    return {"layers": [lyr.name() for lyr in layers], "png": step["png"]}


def op_setting(step: dict) -> dict:
    """Settings ▸ Options ▸ Processing ▸ Providers ▸ EcoVoucher: the command; with ``"env":
    null`` also without ECOVOUCHER_EXE (which overrides the setting)."""
    from processing.core.ProcessingConfig import ProcessingConfig

    ProcessingConfig.setSettingValue("ECOVOUCHER_COMMAND", step["command"])
    if "env" in step:
        if step["env"] is None:
            os.environ.pop("ECOVOUCHER_EXE", None)
        else:
            os.environ["ECOVOUCHER_EXE"] = step["env"]
    groups = ProcessingConfig.getSettings()
    return {"group": [s.name for s in groups.get("EcoVoucher", [])]}


def op_language(step: dict) -> dict:
    set_language(step["lang"])
    return {}


OPS = {
    "algorithms": op_algorithms,
    "run": op_run,
    "render": op_render,
    "clear": op_clear,
    "language": op_language,
    "setting": op_setting,
    "install": lambda step: install(step["zip"]),
}


def main(plan: list[dict]) -> list[dict]:
    results = []
    for step in plan:
        try:
            results.append({"op": step["op"], **OPS[step["op"]](step)})
        except Exception:
            results.append({"op": step["op"], "driver_error": traceback.format_exc()})
    QgsProject.instance().clear()
    return results


if __name__ == "__main__":
    profile, plan_file, out_file = sys.argv[1:4]
    # settings in the profile folder, as QGIS keeps them (QGIS/QGIS3.ini): without this a script's
    # QSettings go to one file per user shared by every QGIS script running, and values change
    # under a run
    QCoreApplication.setOrganizationName("QGIS")
    QCoreApplication.setApplicationName("QGIS3")
    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, profile)
    app = QgsApplication([], False, profile)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    with open(plan_file, encoding="utf-8") as f:
        steps = json.load(f)
    result = main(steps)
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
    app.exitQgis()
