"""Entry point: ``python -m simulators [run|score|opcua|camera] ...`` (see simulators.cli)."""

import sys

from simulators.cli import main

sys.exit(main())
