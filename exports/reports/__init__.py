"""The report engine: catalog of report types (catalog.py, types/), parameter validation
(params.py, relative.py), the engine entry points (engine.py) and the catalog <-> writers
contract (query.py)."""
