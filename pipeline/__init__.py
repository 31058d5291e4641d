"""EcoVoucher: ecological-land vouchers (生态券) from land-use maps, and site VEP.

Data flow, one module per stage:
    catalog/config → ingest → zonal → accounting → export   (run.py ties them together)
    vep (site valuation), demo (synthetic demo data), cli (argument parsing only).
"""

__version__ = "0.1.0"
