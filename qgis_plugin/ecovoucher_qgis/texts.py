"""Every text the plugin shows, in English and Chinese. :func:`text` picks by language code
(``en`` or ``zh``); :mod:`ecovoucher_qgis.i18n` finds QGIS's. Kept as plain pairs rather than Qt
``.ts`` files: no build step, and a translator sees both languages side by side."""

from __future__ import annotations

#: the land-use legends ecovoucher ships, the default first: pipeline.settings.legends.SHIPPED,
#: which QGIS's Python cannot import (tests/test_qgis_plugin_runner.py checks they agree)
LEGENDS = (
    "resdc",
    "sandiao",
    "gbt21010_2007",
    "clcd",
    "globeland30",
    "esa_worldcover",
    "modis_igbp",
)

TEXTS: dict[str, tuple[str, str]] = {
    # provider and algorithms
    "provider": ("EcoVoucher 生态券", "EcoVoucher 生态券"),
    "validate": ("Validate inputs", "检查输入"),
    "run": ("Compute eco-vouchers", "计算生态券"),
    "demo": ("Demo (Beijing–Tianjin–Hebei)", "演示（京津冀）"),
    "vep": ("VEP of a site", "特定地域单元生态产品价值（VEP）"),
    "setting.command": (
        "ecovoucher command (program, or program and arguments; empty: found automatically)",
        "ecovoucher 命令（程序路径，或程序加参数；留空：自动查找）",
    ),
    # run / validate: from files
    "CATALOG": (
        "Data catalog (catalog.yaml) — or give the layers below",
        "数据目录 catalog.yaml（或在下方选择图层）",
    ),
    "CONFIG": (
        "Run configuration (config.yaml) — or give the values below",
        "运行配置 config.yaml（或在下方填写参数）",
    ),
    # run / validate: from layers
    "COUNTIES": ("County polygons", "县级行政区面图层"),
    "COUNTY_ID_FIELD": ("County code field", "县代码字段"),
    "COUNTY_NAME_FIELD": ("County name field", "县名称字段"),
    "COUNTY_PROVINCE_FIELD": ("Province field", "省份字段"),
    "COUNTY_CITY_FIELD": ("City (prefecture) field", "地级市字段"),
    "LANDUSE_BASE": (
        "Land use of the base year (polygons or raster)",
        "基期土地利用（面图层或栅格）",
    ),
    "BASE_YEAR": ("Base year", "基期年份"),
    "BASE_CODE_FIELD": (
        "Class code field of the base-year polygons",
        "基期土地利用地类代码字段（面图层）",
    ),
    "BASE_LEGEND": ("Legend of the base-year land use", "基期土地利用图例"),
    "LANDUSE_TARGET": (
        "Land use of the target year (polygons or raster)",
        "目标年土地利用（面图层或栅格）",
    ),
    "TARGET_YEAR": ("Target year", "目标年份"),
    "TARGET_CODE_FIELD": (
        "Class code field of the target-year polygons",
        "目标年土地利用地类代码字段（面图层）",
    ),
    "TARGET_LEGEND": ("Legend of the target-year land use", "目标年土地利用图例"),
    "SOCIO": (
        "Statistics table: GDP and population per county and year",
        "社会经济统计表：各县各年 GDP 与人口",
    ),
    "SOCIO_ID_FIELD": ("Statistics: county code field", "统计表：县代码字段"),
    "SOCIO_YEAR_FIELD": ("Statistics: year field", "统计表：年份字段"),
    "SOCIO_GDP_FIELD": ("Statistics: GDP field", "统计表：GDP 字段"),
    "SOCIO_POP_FIELD": ("Statistics: population field", "统计表：人口字段"),
    "GDP_SCALE": (
        "GDP unit in yuan (10000 when GDP is in 10⁴ yuan)",
        "GDP 单位折合元数（万元填 10000）",
    ),
    "POP_SCALE": (
        "Population unit in persons (10000 when in 10⁴ persons)",
        "人口单位折合人数（万人填 10000）",
    ),
    "COEFFICIENTS": (
        "Standard-forest coefficients (YAML; empty: the paper's Table 1)",
        "标准林折算系数文件（YAML；留空：论文表 1）",
    ),
    "COEFF_TABLE": (
        "…or a coefficient table (class code and k per row)",
        "……或折算系数表（每行一个地类代码与 k）",
    ),
    "COEFF_CODE_FIELD": ("Coefficient table: class code field", "系数表：地类代码字段"),
    "COEFF_K_FIELD": ("Coefficient table: k field", "系数表：系数 k 字段"),
    "NATIONAL_GDP": (
        "National GDP per capita in the target year (yuan)",
        "目标年全国人均 GDP（元）",
    ),
    "NATIONAL_DENSITY": (
        "National population density in the target year (persons per km²)",
        "目标年全国人口密度（人/km²）",
    ),
    "PRICE": ("Price q of one hm² of standard forest (yuan)", "标准林单价 q（元/hm²）"),
    "PROVINCES": (
        "Study area: provinces, comma-separated (empty with no codes: every county)",
        "研究区：省份，逗号分隔（与县代码都留空：全部县）",
    ),
    "COUNTY_IDS": ("Study area: county codes, comma-separated", "研究区：县代码，逗号分隔"),
    "EQUAL_AREA_CRS": (
        "Equal-area CRS (empty: Albers for China, Krasovsky)",
        "等积投影（留空：中国 Albers，克拉索夫斯基椭球）",
    ),
    "LANDUSE_CHANGE": (
        "Also the map of where land use changed (layer landuse_change; raster land use: also "
        "landuse_change.tif)",
        "同时输出土地利用变化图（landuse_change 图层；栅格土地利用另有 landuse_change.tif）",
    ),
    "WORKERS": ("Worker threads (0: all cores)", "并行线程数（0：全部核）"),
    "OUT_FOLDER": ("Output folder", "输出文件夹"),
    "LOAD": ("When done", "完成后"),
    "load.add": ("Add the styled layers to this project", "把已配置样式的图层加入当前工程"),
    "load.open": (
        "Open the project eco_vouchers.qgz (replaces this project)",
        "打开工程 eco_vouchers.qgz（替换当前工程）",
    ),
    "load.none": ("Load nothing", "不加载"),
    "FORMAT": ("Land use of the demo as", "演示土地利用数据格式"),
    "format.vector": ("polygons (RESDC-style shapefiles)", "面图层（RESDC 式 shapefile）"),
    "format.raster": ("30 m rasters (GeoTIFF)", "30 米栅格（GeoTIFF）"),
    "DEMO_PROVINCES": (
        "Provinces (empty: 北京市, 天津市, 河北省)",
        "省份（留空：北京市、天津市、河北省）",
    ),
    "POLYGONS": (
        "Land-use polygons per year (0: the demo's default)",
        "每年土地利用图斑数（0：演示默认值）",
    ),
    "CACHE": (
        "Folder for the demo data (empty: .cache/demo in the EcoVoucher folder)",
        "演示数据文件夹（留空：EcoVoucher 目录下的 .cache/demo）",
    ),
    "VEP_CONFIG": ("VEP configuration (YAML)", "VEP 配置文件（YAML）"),
    # outputs
    "GPKG": ("Eco-vouchers GeoPackage", "生态券 GeoPackage"),
    "PROJECT": ("QGIS project", "QGIS 工程"),
    "CATALOG_FILE": ("Catalog written", "写出的数据目录"),
    "CONFIG_FILE": ("Configuration written", "写出的运行配置"),
    "VEP_GPKG": ("VEP GeoPackage", "VEP GeoPackage"),
    # messages
    "msg.no_command": (
        "The ecovoucher command was not found or does not run. Install EcoVoucher in a Python "
        "environment (pip install -e . in its folder) and give the command in Settings ▸ Options ▸ "
        "Processing ▸ Providers ▸ EcoVoucher, or set the environment variable ECOVOUCHER_EXE. Tried:\n{tried}",
        "未找到可运行的 ecovoucher 命令。请在某个 Python 环境中安装 EcoVoucher（在其目录中运行 "
        "pip install -e .），然后在 设置 ▸ 选项 ▸ 处理 ▸ 提供者 ▸ EcoVoucher 中填写该命令，或设置环境变量 "
        "ECOVOUCHER_EXE。已尝试：\n{tried}",
    ),
    "msg.using": ("Using {version}: {command} ({where})", "使用 {version}：{command}（{where}）"),
    "msg.canceled": (
        "Canceled; ecovoucher stopped and left no output.",
        "已取消；ecovoucher 已停止，未留下输出。",
    ),
    "msg.failed": (
        "ecovoucher stopped with an error:\n{message}",
        "ecovoucher 因错误停止：\n{message}",
    ),
    "msg.old_cli": (
        "This ecovoucher is older than the plugin (it has no --progress json). Update it: git pull, "
        "then pip install -e . in its folder.",
        "此 ecovoucher 版本比插件旧（不支持 --progress json）。请更新：git pull 后在其目录中运行 pip install -e .",
    ),
    "msg.need_inputs": (
        "Give either a catalog file, or the county layer, both land-use layers with their years "
        "and the statistics table. Missing: {missing}",
        "请给出数据目录文件，或县图层、两期土地利用图层及其年份和统计表。缺少：{missing}",
    ),
    "msg.need_config": (
        "Give either a config file, or the years, the national GDP per capita and population "
        "density of the target year. Missing: {missing}",
        "请给出运行配置文件，或年份、目标年全国人均 GDP 与人口密度。缺少：{missing}",
    ),
    "msg.no_field": (
        "Layer '{layer}' has no field '{field}' ({what}). Its fields: {fields}",
        "图层“{layer}”没有字段“{field}”（{what}）。其字段：{fields}",
    ),
    "msg.not_file_raster": (
        "Raster layer '{layer}' is not a file GDAL can read ({source}); save it as a GeoTIFF first.",
        "栅格图层“{layer}”不是 GDAL 可读的文件（{source}）；请先另存为 GeoTIFF。",
    ),
    "msg.not_polygons": (
        "Layer '{layer}' must be polygons or a raster.",
        "图层“{layer}”必须是面图层或栅格。",
    ),
    "msg.exported": (
        "Layer '{layer}' is not a plain file (filtered, in memory or in a database): written to {path}",
        "图层“{layer}”不是普通文件（有筛选、在内存或数据库中）：已写出到 {path}",
    ),
    "msg.wrote": ("Wrote {path}", "已写出 {path}"),
    "msg.repeat": (
        "The same run from the command line:\n{command}",
        "在命令行中重复此次运行：\n{command}",
    ),
    "msg.canceling": (
        "Canceling: ecovoucher is asked to stop and remove its partial output",
        "正在取消：请 ecovoucher 停止并删除未完成的输出",
    ),
    "msg.loaded": ("Added {n} layers from {path}", "已从 {path} 加入 {n} 个图层"),
    "msg.not_loaded": ("Could not load {path}: {why}", "无法加载 {path}：{why}"),
    "msg.validate_ok": ("No problems found.", "未发现问题。"),
    "group.tables": ("Tables", "表格"),
}


def text(key: str, lang: str) -> str:
    en, zh = TEXTS[key]
    return zh if lang == "zh" else en


HELP: dict[str, tuple[str, str]] = {
    "validate": (
        "<p>Checks every input of an eco-voucher run without computing anything and lists every "
        "problem found at once, each with the file, field or county codes at fault and the fix.</p>"
        "<p>Give a <b>catalog</b> and a <b>config</b> file, or pick the layers and values as for "
        "<i>Compute eco-vouchers</i>; the catalog and config written for them are kept in a "
        "temporary folder named in the log.</p>",
        "<p>检查生态券计算的全部输入而不做计算，一次列出发现的所有问题，并指出出错的文件、字段或县代码及修改方法。</p>"
        "<p>可给出 <b>数据目录</b>（catalog）与 <b>运行配置</b>（config）文件，也可像“计算生态券”那样选择图层并填写参数；"
        "为其写出的 catalog 与 config 保存在日志中给出的临时文件夹里。</p>",
    ),
    "run": (
        "<p>Computes the ecological-land vouchers (生态券) of every county of the study area from "
        "the land use of two years (Gu, Tang &amp; Wang 2022): standard-forest area M = Σ A·k, the "
        "static voucher ΔM = M<sub>t</sub> − M<sub>0</sub>, the dynamic voucher E = ΔM · G<sub>t</sub> · "
        "P<sub>t</sub> and its value Q = E · q.</p>"
        "<p><b>Inputs</b>: either a catalog and a config file (as for <code>ecovoucher run</code>), "
        "or the layers as QGIS offers them: the county polygons and their code/name/province/city "
        "fields; the land use of the two years (polygons with a class-code field, or categorical "
        "rasters) with their years and legend; the statistics table (GDP and population per county "
        "and year); optionally a coefficient file or table (default: the paper's Table 1); the "
        "national GDP per capita and population density of the target year; the price; the study "
        "area. The plugin then writes <code>catalog.yaml</code> and <code>config.yaml</code> into "
        "the output folder, so the same run can be repeated from the command line.</p>"
        "<p><b>Outputs</b> (in the output folder): <code>eco_vouchers.gpkg</code> with the layers "
        "county_vouchers, class_areas, transitions and summary, styled, with Chinese aliases; the "
        "project <code>eco_vouchers.qgz</code>; figures, tables and <code>report.html</code>. "
        "When done, the styled layers are added to this project, or the project is opened.</p>"
        "<p>The computation runs in the <code>ecovoucher</code> command of its own Python "
        "environment (Settings ▸ Options ▸ Processing ▸ Providers ▸ EcoVoucher, or the environment "
        "variable ECOVOUCHER_EXE). <i>Cancel</i> stops it and leaves no partial output.</p>",
        "<p>依据两期土地利用计算研究区内各县的生态券（顾、唐、王 2022）：标准林面积 M = Σ A·k，静态生态券 "
        "ΔM = M<sub>t</sub> − M<sub>0</sub>，动态生态券 E = ΔM · G<sub>t</sub> · P<sub>t</sub>，交易价值 Q = E · q。</p>"
        "<p><b>输入</b>：数据目录与运行配置文件（同 <code>ecovoucher run</code>），或按 QGIS 的方式选择图层："
        "县级行政区面图层及其代码、名称、省、市字段；两期土地利用（带地类代码字段的面图层，或分类栅格）及其年份和图例；"
        "社会经济统计表（各县各年 GDP 与人口）；可选的折算系数文件或表（默认：论文表 1）；目标年全国人均 GDP 与人口密度；"
        "标准林单价；研究区。插件会在输出文件夹中写出 <code>catalog.yaml</code> 与 <code>config.yaml</code>，"
        "可在命令行中重复同一次运行。</p>"
        "<p><b>输出</b>（在输出文件夹中）：<code>eco_vouchers.gpkg</code>，含已配置样式和中文别名的 county_vouchers、"
        "class_areas、transitions、summary 图层；工程文件 <code>eco_vouchers.qgz</code>；图件、表格与 "
        "<code>report.html</code>。完成后把图层加入当前工程，或打开该工程。</p>"
        "<p>计算由独立 Python 环境中的 <code>ecovoucher</code> 命令完成（设置 ▸ 选项 ▸ 处理 ▸ 提供者 ▸ EcoVoucher，"
        "或环境变量 ECOVOUCHER_EXE）。点击“取消”会停止计算，不留下不完整的输出。</p>",
    ),
    "demo": (
        "<p>Builds the demo data set — the 199 real county boundaries of 北京市, 天津市 and 河北省 "
        "with <b>synthetic</b> land use (2010, 2018) and statistics — and computes its eco-vouchers. "
        "The first run builds the data (a minute or two); later runs reuse it.</p>",
        "<p>构建演示数据——北京市、天津市、河北省 199 个真实县级边界，土地利用（2010、2018）与统计数据为<b>合成数据</b>——"
        "并计算其生态券。首次运行需构建数据（一两分钟），之后复用。</p>",
    ),
    "vep": (
        "<p>Values the ecosystem products of one site (VEP, 特定地域单元生态产品价值) from a VEP "
        "config file: V = P − P′ per item, by income capitalisation, market comparison, residual "
        "or cost. Writes <code>vep.gpkg</code> (vep_items, vep_site) to the output folder.</p>",
        "<p>依据 VEP 配置文件评估特定地域单元的生态产品价值（VEP）：逐项 V = P − P′，方法为收益还原法、"
        "市场比较法、剩余法或成本法。在输出文件夹中写出 <code>vep.gpkg</code>（vep_items、vep_site）。</p>",
    ),
}


def help_html(alg: str, lang: str) -> str:
    en, zh = HELP[alg]
    return zh if lang == "zh" else en
