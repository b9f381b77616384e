"""Entry point: ``python -m simulators {opcua,camera} ...`` (see simulators.cli)."""

import sys

from simulators.cli import main

sys.exit(main())
