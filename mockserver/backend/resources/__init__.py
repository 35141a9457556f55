"""One module per m3ter resource: what is particular to it (fields, derived values,
references to other entities, views). The shared rules live in ``..crud``."""
