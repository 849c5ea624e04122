"""`python -m helpers.capstone.launch FILE ARGS...`: become `python FILE ARGS...`, dying with our parent.

The gauntlet runs the student's programs through this: the death signal (PR_SET_PDEATHSIG, see
helpers.processes) is armed here, and survives the exec, so a student's server can never outlive
the kernel that attacks it, even when that kernel is killed with SIGKILL.
"""

import os
import sys

from helpers import processes


def main() -> None:
    processes.die_with_parent()
    program, *args = sys.argv[1:]
    os.execv(sys.executable, [sys.executable, program, *args])


if __name__ == "__main__":
    main()
