"""The developer portal: the merged OpenAPI document, interactive docs, published APIs."""
