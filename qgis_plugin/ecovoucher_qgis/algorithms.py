"""The four algorithms: ``ecovoucher:validate``, ``ecovoucher:run``, ``ecovoucher:demo`` and
``ecovoucher:vep``. Each prepares its arguments in the main thread (layers are read there), runs
the ``ecovoucher`` command in :func:`processAlgorithm` (a worker thread; see
:mod:`ecovoucher_qgis.runner`) and loads the results in the main thread afterwards."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingUtils,
)
from qgis.PyQt.QtGui import QIcon

from . import inputs, loading, runner
from .i18n import help_text, tr
from .provider import ICON, configured_command


class _Algorithm(QgsProcessingAlgorithm):
    ID = ""
    COMMAND = ""

    def __init__(self) -> None:
        super().__init__()
        self._args: list[str] = []
        self._folder: Path | None = None
        self._gpkg: Path | None = None
        self._load = loading.NOTHING
        self._results: dict[str, str] = {}

    def name(self) -> str:
        return self.ID

    def displayName(self) -> str:
        return tr(self.ID)

    def shortHelpString(self) -> str:
        return help_text(self.ID)

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def createInstance(self):
        return type(self)()

    def _add_out_folder(self) -> None:
        self.addParameter(QgsProcessingParameterFolderDestination("OUT_FOLDER", tr("OUT_FOLDER")))

    def _add_load(self, options=("load.add", "load.open", "load.none")) -> None:
        self.addParameter(
            QgsProcessingParameterEnum("LOAD", tr("LOAD"), [tr(o) for o in options], False, 0)
        )

    def _add_workers(self) -> None:
        self.addParameter(
            inputs.advanced(
                QgsProcessingParameterNumber(
                    "WORKERS", tr("WORKERS"), QgsProcessingParameterNumber.Integer, 0, True, 0
                )
            )
        )

    def _add_outputs(self, *names: str) -> None:
        for name in names:
            self.addOutput(QgsProcessingOutputFile(name, tr(name)))

    def _set_output_folder(self, parameters, context, gpkg: str) -> None:
        """The output folder, the GeoPackage the command writes there, and what to load."""
        self._folder = Path(self.parameterAsString(parameters, "OUT_FOLDER", context))
        self._gpkg = self._folder / gpkg
        self._results = {"OUT_FOLDER": str(self._folder), "GPKG": str(self._gpkg)}
        if gpkg == "eco_vouchers.gpkg":
            self._results["PROJECT"] = str(self._folder / "eco_vouchers.qgz")

    def processAlgorithm(self, parameters, context, feedback):
        self._execute(feedback)
        return dict(self._results)

    def _add_landuse_change(self) -> None:
        self.addParameter(
            QgsProcessingParameterBoolean("LANDUSE_CHANGE", tr("LANDUSE_CHANGE"), False, True)
        )

    def _landuse_change(self, parameters, context) -> list[str]:
        return (
            ["--landuse-change"]
            if self.parameterAsBool(parameters, "LANDUSE_CHANGE", context)
            else []
        )

    def _workers(self, parameters, context) -> list[str]:
        n = self.parameterAsInt(parameters, "WORKERS", context)
        return ["--workers", str(n)] if n > 0 else []

    def _execute(self, feedback) -> runner.Outcome:
        """Run ``ecovoucher <COMMAND> --progress json <args>``; the command's own message when it
        fails, a clean stop when canceled."""
        try:
            command, where, version = runner.find_command(configured_command())
        except runner.CommandNotFound as exc:
            raise QgsProcessingException(tr("msg.no_command", tried=str(exc) or "—")) from None
        feedback.pushInfo(
            tr("msg.using", version=version, command=shlex.join(command), where=where)
        )
        args = [self.COMMAND, *runner.PROGRESS_ARGS, *self._args]
        try:
            return runner.check(runner.run(command, args, feedback, canceling=tr("msg.canceling")))
        except runner.Canceled:
            raise QgsProcessingException(tr("msg.canceled")) from None
        except runner.CommandFailed as exc:
            message = str(exc)
            if (
                "unrecognized arguments: --progress" in message
                or "invalid choice: 'json'" in message
            ):
                message = tr("msg.old_cli")
            raise QgsProcessingException(tr("msg.failed", message=message)) from None

    def postProcessAlgorithm(self, context, feedback):
        if self._gpkg is not None and self._gpkg.exists() and self._load != loading.NOTHING:
            title = f"{tr(self.ID)} — {self._folder.name}"
            loading.load(self._load, context.project(), self._folder, self._gpkg, feedback, title)
        return {}


def _repeat(command: str, args: list[str]) -> str:
    return shlex.join(["ecovoucher", command, *args])


class ValidateAlgorithm(_Algorithm):
    ID = COMMAND = "validate"

    def initAlgorithm(self, config=None):
        inputs.add_parameters(self)

    def prepareAlgorithm(self, parameters, context, feedback):
        folder = Path(
            tempfile.mkdtemp(prefix="ecovoucher-validate-", dir=QgsProcessingUtils.tempFolder())
        )
        catalog, config = inputs.write_inputs(self, parameters, context, feedback, folder)
        self._args = ["--catalog", str(catalog), "--config", str(config)]
        feedback.pushInfo(tr("msg.repeat", command=_repeat(self.COMMAND, self._args)))
        return True

    def processAlgorithm(self, parameters, context, feedback):
        self._execute(feedback)
        feedback.pushInfo(tr("msg.validate_ok"))
        return {}


class RunAlgorithm(_Algorithm):
    ID = COMMAND = "run"

    def initAlgorithm(self, config=None):
        inputs.add_parameters(self)
        self._add_landuse_change()
        self._add_workers()
        self._add_out_folder()
        self._add_load()
        self._add_outputs("GPKG", "PROJECT", "CATALOG_FILE", "CONFIG_FILE")

    def prepareAlgorithm(self, parameters, context, feedback):
        self._set_output_folder(parameters, context, "eco_vouchers.gpkg")
        self._folder.mkdir(parents=True, exist_ok=True)
        catalog, config = inputs.write_inputs(self, parameters, context, feedback, self._folder)
        self._results.update(CATALOG_FILE=str(catalog), CONFIG_FILE=str(config))
        self._args = [
            "--catalog", str(catalog), "--config", str(config), "--out", str(self._folder),
            *self._landuse_change(parameters, context), *self._workers(parameters, context),
        ]  # fmt: skip
        self._load = self.parameterAsEnum(parameters, "LOAD", context)
        feedback.pushInfo(tr("msg.repeat", command=_repeat(self.COMMAND, self._args)))
        return True


class DemoAlgorithm(_Algorithm):
    ID = COMMAND = "demo"
    FORMATS = ("vector", "raster")

    def initAlgorithm(self, config=None):
        self.addParameter(
            QgsProcessingParameterEnum(
                "FORMAT", tr("FORMAT"), [tr(f"format.{f}") for f in self.FORMATS], False, 0
            )
        )
        self.addParameter(
            QgsProcessingParameterString("PROVINCES", tr("DEMO_PROVINCES"), None, False, True)
        )
        self.addParameter(
            inputs.advanced(
                QgsProcessingParameterNumber(
                    "POLYGONS", tr("POLYGONS"), QgsProcessingParameterNumber.Integer, 0, True, 0
                )
            )
        )
        self.addParameter(
            inputs.advanced(
                QgsProcessingParameterFile(
                    "CACHE", tr("CACHE"), QgsProcessingParameterFile.Folder, optional=True
                )
            )
        )
        self._add_landuse_change()
        self._add_workers()
        self._add_out_folder()
        self._add_load()
        self._add_outputs("GPKG", "PROJECT")

    def prepareAlgorithm(self, parameters, context, feedback):
        self._set_output_folder(parameters, context, "eco_vouchers.gpkg")
        self._args = ["--out", str(self._folder),
                      "--format", self.FORMATS[self.parameterAsEnum(parameters, "FORMAT", context)]]  # fmt: skip
        provinces = inputs.split_list(self.parameterAsString(parameters, "PROVINCES", context))
        if provinces:
            self._args += ["--provinces", *provinces]
        polygons = self.parameterAsInt(parameters, "POLYGONS", context)
        if polygons > 0:
            self._args += ["--polygons", str(polygons)]
        cache = self.parameterAsFile(parameters, "CACHE", context)
        if cache:
            self._args += ["--cache", cache]
        self._args += self._landuse_change(parameters, context) + self._workers(parameters, context)
        self._load = self.parameterAsEnum(parameters, "LOAD", context)
        return True


class VepAlgorithm(_Algorithm):
    ID = COMMAND = "vep"

    def initAlgorithm(self, config=None):
        self.addParameter(QgsProcessingParameterFile("CONFIG", tr("VEP_CONFIG"), extension="yaml"))
        self._add_out_folder()
        self._add_load(("load.add", "load.none"))
        self.addOutput(QgsProcessingOutputFile("GPKG", tr("VEP_GPKG")))

    def prepareAlgorithm(self, parameters, context, feedback):
        self._set_output_folder(parameters, context, "vep.gpkg")
        config = self.parameterAsFile(parameters, "CONFIG", context)
        self._args = ["--config", config, "--out", str(self._folder)]
        self._load = (
            loading.ADD
            if self.parameterAsEnum(parameters, "LOAD", context) == 0
            else loading.NOTHING
        )
        return True


ALGORITHMS = [ValidateAlgorithm, RunAlgorithm, DemoAlgorithm, VepAlgorithm]
