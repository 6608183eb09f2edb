"""Plain helpers the tests import (tests/ is on pytest's pythonpath); fixtures stay in conftest files."""
