"""python run.py <method> --env=<EnvName> [flags]: the original QMP command line (qmp/command.py; `qmp ...` after
`pip install .` is the same command)."""

import sys

from qmp.command import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
