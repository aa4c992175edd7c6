"""Service items (政务服务事项): forms, materials, process templates and immutable versions."""
