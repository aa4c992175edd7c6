"""Catalog: service items (政务服务事项), one-thing bundles (一件事) and the data-resource
catalogue (政务信息资源目录).
"""
