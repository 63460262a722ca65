"""``python -m devstack up|down|status``: ``rollout dev`` without the CLI (``make down`` uses it)."""

import sys

from devstack.stack import main

sys.exit(main(sys.argv[1:]))
