"""Names vulture (`make lint`) reports as unused that are used: called by a framework, or set for a library.

The last section is real dead code found when the check was added: delete the code and its line here.
"""
# ruff: noqa: B018
# mypy: ignore-errors

from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# Temporal calls an interceptor's intercept_activity.
_.intercept_activity
# simpleeval dispatches on ast node names (_eval_<node>).
_._eval_attribute
_._eval_boolop
# kubernetes.client: Configuration and V1ObjectMeta attributes, read by the client library.
_.connection_pool_maxsize
_.generate_name

# Temporal calls a client interceptor's intercept_client (tests count describes with one).
_.intercept_client
# kubernetes.leaderelection reads the lock's api_instance.
_.api_instance
# Payload fields on the wire: the CLI's and the UI's JSON (`-o json`, memo) read them, not Python code.
_.paused_at
_.bake_until
_.approval_deadline
# The exit codes are documented together; argparse itself exits 2 on a usage error.
_.EXIT_USAGE

# ---- dead code to delete (then delete its line) ---------------------------------------------------------
