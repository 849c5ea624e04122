"""`python -m helpers.capstone server.py client.py`: run the gauntlet from a terminal (exit status 0 if all pass)."""

import sys

from helpers.capstone.attacks import main

sys.exit(main())
