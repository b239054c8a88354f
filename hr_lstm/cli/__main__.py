"""`python -m hr_lstm.cli ...`: the same as `hr-lstm ...`."""

import sys

from . import main

sys.exit(main())
