"""The v2 resource engine: every resource is a declaration (datapoints_service/resources.py)
and this package serves it: the filter grammar, order, pages, JSON or CSV, and writes.

- fields.py: a field's kind, its filter operators, and how wire values are read.
- resource.py: the declaration of a resource, the caller, the registry.
- listing.py: a query string -> one SQL statement (filters, permission, order, window).
- rendering.py: rows -> the document's objects, or CSV lines.
- writes.py: insert, update, delete (validated, one transaction each).
"""
