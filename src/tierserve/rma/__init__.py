"""RMA, the Allen data API's query language: a pure parser producing a typed query tree.

Nothing here knows SQL or HTTP: `tierserve.db.rma` validates a tree against the whitelisted
models and compiles it to SQLAlchemy Core with bound parameters; `tierserve.rma.formats` writes
results as the Allen JSON, XML and CSV responses.
"""
