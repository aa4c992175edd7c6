"""The data-resource catalogue (政务信息资源目录): datasets, their field schemas and versions."""
