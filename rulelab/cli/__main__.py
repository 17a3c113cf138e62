import sys

from rulelab.cli import main

sys.exit(main())
