"""`python -m bots.slack`: the Slack bot process (customers and, when configured, the desk)."""

import sys

from bots.slack.app import main

sys.exit(main(sys.argv[1:]))
