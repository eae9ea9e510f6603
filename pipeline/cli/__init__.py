"""The ``nola`` command's helpers: scaffolding a project, its status, predictions on new images."""
