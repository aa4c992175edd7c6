"""Identity (统一身份认证): people, organisations, roles and credentials;
the OpenID Connect provider.
"""
