"""Services behind the operations that are not plain CRUD, one module per group."""
