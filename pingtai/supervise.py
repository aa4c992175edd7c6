"""``python -m pingtai.supervise``: the long-lived process ``pingtai up`` becomes.

It speaks plain HTTP to 127.0.0.1 only, so ``ssl`` is refused before asyncio is imported:
asyncio then runs without TLS support and the supervisor does not map OpenSSL (4 MB resident;
docs/operations.md, "Memory on one machine"). Its children (the parts, the migrations, the demo
seed) are new interpreters and import ``ssl`` as usual.
"""

import sys

sys.modules["ssl"] = None  # type: ignore[assignment]  # makes `import ssl` raise ImportError

from pingtai.supervisor import main  # noqa: E402

main()
